//! The fault schedule (the nemesis): until the fault phase ends, at seeded moments, it
//! cuts the network into two sides or heals it, cuts a node's power (rarely every
//! node's at once) or restarts it,
//! changes the message loss rate and the delays, skews a node's clock (forward or
//! back), and makes a node's engine flush or compact (the engine's background work
//! runs only when the simulator says so).

use super::node::SimNode;
use super::SimCluster;
use kv_engine::fs::CrashMode;
use rand::Rng;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Nodes that may be down at once: more and nothing could reach a quorum for long.
const MAX_DOWN: usize = 2;

/// Runs the schedule until `until`.
pub(crate) async fn run_faults(cluster: Arc<SimCluster>, until: Instant) {
    let world = &cluster.setup.world;
    loop {
        let pause = world.rng(|r| r.gen_range(200..2_000));
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if Instant::now() >= until {
            return;
        }
        match world.rng(|r| r.gen_range(0..100)) {
            0..=1 => power_cut_everywhere(&cluster),
            2..=14 => partition(&cluster),
            15..=24 => heal_network(&cluster),
            25..=39 => crash_one(&cluster),
            40..=54 => restart_one(&cluster),
            55..=64 => {
                let loss = world.rng(|r| r.gen_range(0..=150));
                world.set_net(|n| n.loss_per_mille = loss);
                world.trace(format_args!("loss {loss} per mille"));
            }
            65..=74 => {
                let delay = match world.rng(|r| r.gen_range(0..3)) {
                    0 => (1, 5),
                    1 => (5, 50),
                    _ => (50, 400),
                };
                world.set_net(|n| n.delay_ms = delay);
                world.trace(format_args!("delays {delay:?} ms"));
            }
            75..=87 => skew_one(&cluster),
            _ => engine_work(&cluster),
        }
    }
}

/// Splits the nodes into two random sides that cannot reach each other.
fn partition(cluster: &SimCluster) {
    let world = &cluster.setup.world;
    let ids: Vec<_> = cluster.nodes.iter().map(|n| n.id).collect();
    let side: Vec<bool> = ids.iter().map(|_| world.rng(|r| r.gen_bool(0.5))).collect();
    let mut cuts = BTreeSet::new();
    for (a, &sa) in ids.iter().zip(&side) {
        for (b, &sb) in ids.iter().zip(&side) {
            if sa != sb {
                cuts.insert((*a, *b));
            }
        }
    }
    if cuts.is_empty() {
        return;
    }
    world.count(|s| s.partitions += 1);
    world.trace(format_args!("partition {side:?}"));
    world.set_net(|n| n.cuts = cuts);
}

fn heal_network(cluster: &SimCluster) {
    let world = &cluster.setup.world;
    world.set_net(|n| n.cuts.clear());
    world.trace(format_args!("heal"));
}

fn crash_one(cluster: &SimCluster) {
    let world = &cluster.setup.world;
    let down = cluster.nodes.len() - running(cluster, true).len();
    let Some(node) = pick(cluster, true).filter(|_| down < MAX_DOWN) else {
        return;
    };
    let mode = match world.rng(|r| r.gen_bool(0.5)) {
        true => CrashMode::DropUnsynced,
        false => CrashMode::TornTail(world.rng(|r| r.gen())),
    };
    if node.crash(world, mode) {
        world.count(|s| s.crashes += 1);
    }
}

/// The nodes that are running (`up`) or crashed and able to restart (`!up`; a node
/// dead for good never restarts).
fn running(cluster: &SimCluster, up: bool) -> Vec<&SimNode> {
    let nodes = cluster.nodes.iter();
    nodes
        .filter(|n| n.current().is_some() == up && !n.is_retired())
        .collect()
}

/// A random node among the running (`up`) or crashed (`!up`) ones.
fn pick(cluster: &SimCluster, up: bool) -> Option<&SimNode> {
    let candidates = running(cluster, up);
    if candidates.is_empty() {
        return None;
    }
    let i = cluster
        .setup
        .world
        .rng(|r| r.gen_range(0..candidates.len()));
    Some(candidates[i])
}

/// The whole ring loses power at once (a data center's power cut): only what every
/// node synced survives. Nodes come back one by one through later restarts.
fn power_cut_everywhere(cluster: &SimCluster) {
    let world = &cluster.setup.world;
    world.trace(format_args!("power cut everywhere"));
    for node in &cluster.nodes {
        if node.crash(world, CrashMode::DropUnsynced) {
            world.count(|s| s.crashes += 1);
        }
    }
}

fn restart_one(cluster: &SimCluster) {
    if let Some(node) = pick(cluster, false) {
        cluster.start_node(node);
    }
}

fn skew_one(cluster: &SimCluster) {
    let world = &cluster.setup.world;
    let node = &cluster.nodes[world.rng(|r| r.gen_range(0..cluster.nodes.len()))];
    // Two nodes then differ by at most 400 ms, inside the 500 ms maximum clock offset:
    // a node beyond it stops coordinating, which the simulation does not model.
    let skew = world.rng(|r| r.gen_range(-200..=200));
    node.clock.set_skew_ms(skew);
    world.count(|s| s.clock_skews += 1);
    world.trace(format_args!("skew {:?} {skew} ms", node.id));
}

/// Flushes a running node's memtable to a table, and sometimes compacts its replicated
/// records, so reads and recovery also go through tables.
fn engine_work(cluster: &SimCluster) {
    let world = &cluster.setup.world;
    let Some((node, inc)) = pick(cluster, true).and_then(|n| Some((n, n.current()?))) else {
        return;
    };
    let compact = world.rng(|r| r.gen_bool(0.3));
    let done = match compact {
        true => inc.db.compact_range(inc.store.data_keyspace(), None, None),
        false => inc.db.flush(),
    };
    world.count(|s| s.engine_flushes += 1);
    world.trace(format_args!(
        "{:?} {} ok={}",
        node.id,
        if compact { "compact" } else { "flush" },
        done.is_ok()
    ));
}

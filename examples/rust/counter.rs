//! A counter incremented at once by several clients through different nodes.
//!
//! Every INCR on a kvd cluster is a consensus round on the key's replicas, so increments
//! through different nodes never overwrite each other: the sum is exact. An INCR whose
//! outcome the client did not learn (a broken connection, TIMEOUT) may or may not have
//! counted; the final value must then lie between the acknowledged increments and those
//! plus the unknown ones, and the example checks exactly that.
//!
//! Usage: example-counter [host:port ...]   (default: the README's cluster)

mod nodes;

use nodes::{addresses, connect, expect_reply, fail, run_together, unless_nothing_written};
use std::collections::{BTreeMap, HashSet};

const KEY: &str = "example:counter";
/// Spread over the nodes: two per node on three nodes.
const CLIENTS: usize = 6;
/// By each client.
const INCREMENTS: usize = 25;

/// INCRs by one client: the replies it got, and how many ended of unknown outcome.
fn increment_many(address: &str) -> (Vec<i64>, usize) {
    let mut con = connect(address);
    let (mut replies, mut unknown) = (Vec::new(), 0);
    for _ in 0..INCREMENTS {
        match unless_nothing_written(|| redis::cmd("INCR").arg(KEY).query::<i64>(&mut con)) {
            Ok(value) => replies.push(value),
            Err(e) => {
                println!("unknown outcome through {address}: {e}");
                unknown += 1;
                if e.is_io_error() {
                    con = connect(address); // a late reply must not be taken for the next
                }
            }
        }
    }
    (replies, unknown)
}

fn main() {
    let nodes = addresses();
    let mut first = connect(&nodes[0]);
    expect_reply("DEL", redis::cmd("DEL").arg(KEY).query::<i64>(&mut first));
    let results = run_together(CLIENTS, |i| increment_many(&nodes[i % nodes.len()]));
    let replies: Vec<i64> = results
        .iter()
        .flat_map(|(r, _)| r.iter().copied())
        .collect();
    let unknown: usize = results.iter().map(|(_, u)| u).sum();
    println!(
        "{CLIENTS} clients through {} nodes: {} INCRs acknowledged, {unknown} of unknown outcome",
        nodes.len(),
        replies.len()
    );

    if replies.iter().collect::<HashSet<_>>().len() != replies.len() {
        fail("two INCRs got the same reply: one increment was lost");
    }
    let finals: BTreeMap<&str, i64> = nodes
        .iter()
        .map(|address| {
            let value: Option<i64> = expect_reply(
                "GET",
                redis::cmd("GET").arg(KEY).query(&mut connect(address)),
            );
            (address.as_str(), value.unwrap_or(0))
        })
        .collect();
    println!("final value through each node: {finals:?}");
    let final_value = finals[nodes[0].as_str()];
    if finals.values().any(|&v| v != final_value) {
        fail("the nodes disagree on the counter");
    }
    let acked = replies.len() as i64;
    if !(acked..=acked + unknown as i64).contains(&final_value) {
        fail(format!(
            "counter {final_value}, expected between {acked} and {}",
            acked + unknown as i64
        ));
    }
    println!("counter = {final_value}: every acknowledged increment counted once");
    println!("OK");
}

//! `kvtool cluster status`: every node of a running cluster as one node sees it, with
//! each node's own counters (hints, anti-entropy, layout version).

use super::client::{cluster_command, field, query_info};
use crate::failure::Failure;
use clap::Args;
use serde::Serialize;

/// Show every node of a running cluster: state, partitions, hints, repair.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Any node of the cluster, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
}

/// One node in `kvtool cluster status`.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// Node id.
    pub id: String,
    /// Client address.
    pub addr: String,
    /// up, suspect or down as the asked node sees it.
    pub state: String,
    /// Slot ranges of the partitions it is first in preference for.
    pub first_slots: String,
    /// Hints it holds for others (unknown if it does not answer).
    pub hints_pending: Option<u64>,
    /// Anti-entropy rounds it ran.
    pub anti_entropy_rounds: Option<u64>,
    /// Keys anti-entropy repaired on it.
    pub keys_repaired: Option<u64>,
    /// Layout version it holds.
    pub layout_version: Option<u64>,
}

/// Runs `kvtool cluster status`.
pub fn run_status(args: &StatusArgs, json: bool) -> Result<i32, Failure> {
    let nodes = status_of(&args.addr)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&nodes).map_err(|e| Failure::new(e.to_string()))?
        );
    } else {
        print_table(&nodes);
    }
    Ok(if nodes.iter().all(|n| n.state == "up") {
        0
    } else {
        1
    })
}

/// Every node as `addr` sees it, with each node's own counters where it answers.
pub fn status_of(addr: &str) -> Result<Vec<NodeStatus>, Failure> {
    let text: String = cluster_command(addr, "NODES", &[])?;
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 8 {
            continue;
        }
        let node_addr = words[1].split('@').next().unwrap_or("").to_string();
        let flags = words[2];
        let state = if flags.contains("fail?") {
            "suspect"
        } else if flags.contains("fail") {
            "down"
        } else {
            "up"
        };
        let info = query_info(&node_addr).ok();
        let num = |name: &str| {
            info.as_deref()
                .and_then(|i| field(i, name))
                .and_then(|v| v.parse().ok())
        };
        out.push(NodeStatus {
            id: words[0].trim_start_matches('0').to_string(),
            addr: node_addr,
            state: state.to_string(),
            first_slots: words[8..].join(" "),
            hints_pending: num("kvd_hints_pending"),
            anti_entropy_rounds: num("kvd_anti_entropy_rounds"),
            keys_repaired: num("kvd_anti_entropy_keys_repaired"),
            layout_version: num("kvd_layout_version"),
        });
    }
    Ok(out)
}

/// The node table `cluster status` and `cluster up` print.
pub fn print_table(nodes: &[NodeStatus]) {
    let opt = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |n| n.to_string());
    println!(
        "{:<18} {:<21} {:<8} {:>6} {:>6} {:>9} {:>8}  first slots",
        "node", "address", "state", "layout", "hints", "ae-rounds", "repaired"
    );
    for n in nodes {
        println!(
            "{:<18} {:<21} {:<8} {:>6} {:>6} {:>9} {:>8}  {}",
            n.id,
            n.addr,
            n.state,
            opt(n.layout_version),
            opt(n.hints_pending),
            opt(n.anti_entropy_rounds),
            opt(n.keys_repaired),
            n.first_slots
        );
    }
}

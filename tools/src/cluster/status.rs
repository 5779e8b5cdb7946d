//! `kvtool cluster status`: every node of a running cluster as one node sees it, with
//! each node's own counters (hints, anti-entropy, layout version) and, during a layout
//! change, what it streamed of its incoming partitions, how fast, the time left, and
//! which departing nodes may be switched off (docs/kvtool.md, "Watching a change").

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
    /// The layout change under way as it sees it (`from->to`, or `none`).
    pub transition: Option<String>,
    /// Its incoming partitions in that change, and how many are copied.
    pub incoming_partitions: Option<u64>,
    /// Of them, copied (snapshot streamed and caught up).
    pub copied_partitions: Option<u64>,
    /// Snapshot bytes it streamed in that change.
    pub streamed_bytes: Option<u64>,
    /// What the sources reported its incoming partitions weigh.
    pub expected_bytes: Option<u64>,
    /// Bytes per second streamed since copying began.
    pub stream_bytes_per_sec: Option<u64>,
    /// Seconds left at that rate (-1: nothing streamed yet).
    pub eta_sec: Option<i64>,
    /// Departing nodes it sees every member done copying from (may be switched off).
    pub safe_to_remove: Vec<String>,
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
        let text = |name: &str| info.as_deref().and_then(|i| field(i, name));
        let num = |name: &str| text(name).and_then(|v| v.parse().ok());
        out.push(NodeStatus {
            id: words[0].trim_start_matches('0').to_string(),
            addr: node_addr,
            state: state.to_string(),
            first_slots: words[8..].join(" "),
            hints_pending: num("kvd_hints_pending"),
            anti_entropy_rounds: num("kvd_anti_entropy_rounds"),
            keys_repaired: num("kvd_anti_entropy_keys_repaired"),
            layout_version: num("kvd_layout_version"),
            transition: text("kvd_layout_transition").map(str::to_string),
            incoming_partitions: num("kvd_layout_incoming_partitions"),
            copied_partitions: num("kvd_layout_copied_partitions"),
            streamed_bytes: num("kvd_layout_streamed_bytes"),
            expected_bytes: num("kvd_layout_expected_bytes"),
            stream_bytes_per_sec: num("kvd_layout_stream_bytes_per_sec"),
            eta_sec: text("kvd_layout_copy_eta_sec").and_then(|v| v.parse().ok()),
            safe_to_remove: text("kvd_layout_safe_to_remove")
                .filter(|v| *v != "none")
                .map(|v| v.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The node table `cluster status` and `cluster up` print; during a layout change, a
/// second table of each node's copy progress and the nodes that may be switched off.
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
    let changing: Vec<&NodeStatus> = nodes
        .iter()
        .filter(|n| n.transition.as_deref().is_some_and(|t| t != "none"))
        .collect();
    if changing.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<18} {:<9} {:>11} {:>21} {:>10} {:>8}",
        "node", "change", "partitions", "streamed MiB", "MiB/s", "eta s"
    );
    let mib = |b: Option<u64>| {
        b.map_or_else(
            || "?".to_string(),
            |b| format!("{:.1}", b as f64 / 1048576.0),
        )
    };
    for n in changing {
        let eta = match n.eta_sec {
            Some(e) if e >= 0 => e.to_string(),
            Some(_) => "unknown".to_string(),
            None => "?".to_string(),
        };
        println!(
            "{:<18} {:<9} {:>11} {:>21} {:>10} {:>8}",
            n.id,
            n.transition.as_deref().unwrap_or("?"),
            format!(
                "{}/{}",
                opt(n.copied_partitions),
                opt(n.incoming_partitions)
            ),
            format!("{} / {}", mib(n.streamed_bytes), mib(n.expected_bytes)),
            mib(n.stream_bytes_per_sec),
            eta
        );
    }
    let mut safe: Vec<&String> = nodes.iter().flat_map(|n| &n.safe_to_remove).collect();
    safe.sort();
    safe.dedup();
    for id in safe {
        println!("safe to remove: {id} (every partition it held is copied to its new replicas)");
    }
}

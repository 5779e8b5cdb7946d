//! A local cluster of real kvd processes on loopback for the cluster tests: fixed client
//! and bus ports chosen up front (every node's `--cluster-seeds` names them), readiness
//! polled through CLUSTER INFO, and per-node access to kill -9, SIGSTOP and restart.

use crate::{eventually, free_port, info_field, Kvd};
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
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let seeds: Vec<String> = ports
            .iter()
            .map(|(_, b)| format!("127.0.0.1:{b}"))
            .collect();
        let seeds = seeds.join(",");
        let replicas = n.min(3).to_string();
        let quorum = (n.min(3) / 2 + 1).to_string();
        let nodes = ports
            .iter()
            .map(|(port, bus)| {
                let bus = bus.to_string();
                let mut args = vec![
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus,
                    "--cluster-seeds",
                    &seeds,
                    "--cluster-replicas",
                    &replicas,
                    "--cluster-write-quorum",
                    &quorum,
                    "--cluster-read-quorum",
                    &quorum,
                ];
                args.extend_from_slice(extra);
                Kvd::start_at(*port, &args)
            })
            .collect();
        let c = Cluster { nodes };
        c.wait_formed();
        c
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

/// One field of a node's CLUSTER INFO (`None` if the node does not answer).
pub fn cluster_info(node: &Kvd, field: &str) -> Option<String> {
    let client = redis::Client::open(node.url(false)).ok()?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let text: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn).ok()?;
    info_field(&text, field)
}

/// A node's Merkle roots (CLUSTER MERKLE), one hex string per partition.
pub fn merkle_roots(node: &Kvd) -> Option<Vec<String>> {
    let client = redis::Client::open(node.url(false)).ok()?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    redis::cmd("CLUSTER").arg("MERKLE").query(&mut conn).ok()
}

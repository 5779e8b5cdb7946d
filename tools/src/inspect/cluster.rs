//! The "Cluster node" section of `kvtool inspect DIR` for a cluster node's directory:
//! who the node is (`cluster/node.json`), the layout it holds (`cluster/layout.json`)
//! and, with `--exact`, its replicated records, tombstones and hints counted by decoding
//! every live entry.

use crate::cluster_dir::{read_facts, RecordCounts};
use crate::output::{self, Render};
use serde::Serialize;
use std::path::Path;

/// Cluster facts of a node's directory.
#[derive(Debug, Serialize)]
pub struct ClusterSection {
    /// This node's id (40 hex digits).
    pub node_id: Option<String>,
    /// Its cluster's id, once bootstrap made one.
    pub cluster_id: Option<String>,
    /// Version of the layout it holds (`None`: no layout yet).
    pub layout_version: Option<u64>,
    /// N of that layout.
    pub replicas: Option<usize>,
    /// Members of that layout.
    pub members: Option<usize>,
    /// Partitions this node holds a replica of.
    pub partitions_held: Option<usize>,
    /// Partitions that list this node first.
    pub partitions_first: Option<usize>,
    /// Why the identity or layout could not be read (a damaged file).
    pub error: Option<String>,
    /// Records, tombstones and hints (`--exact`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<RecordCounts>,
}

/// The section for `dir`, or `None` if it is not a cluster node's directory.
pub fn section(dir: &Path) -> Option<ClusterSection> {
    let empty = ClusterSection {
        node_id: None,
        cluster_id: None,
        layout_version: None,
        replicas: None,
        members: None,
        partitions_held: None,
        partitions_first: None,
        error: None,
        records: None,
    };
    match read_facts(dir) {
        Ok(None) => None,
        Err(e) => Some(ClusterSection {
            error: Some(e),
            ..empty
        }),
        Ok(Some(facts)) => Some(ClusterSection {
            node_id: Some(facts.node_id.to_string()),
            cluster_id: facts.cluster_id.clone(),
            layout_version: facts.layout.as_ref().map(|l| l.version),
            replicas: facts.layout.as_ref().map(|l| l.replicas),
            members: facts.layout.as_ref().map(|l| l.nodes.len()),
            partitions_held: facts.partitions_held().map(|p| p.len()),
            partitions_first: facts.layout.as_ref().map(|_| facts.partitions_first()),
            ..empty
        }),
    }
}

impl Render for ClusterSection {
    fn render(&self, out: &mut String) {
        out.push_str("\nCluster node\n");
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let mut f = vec![
            ("node id", opt(self.node_id.clone())),
            ("cluster id", opt(self.cluster_id.clone())),
            (
                "layout",
                match (self.layout_version, self.replicas, self.members) {
                    (Some(v), Some(n), Some(m)) => {
                        format!("version {v}, {m} nodes, N={n}")
                    }
                    _ => "none yet (the node has not joined a cluster)".into(),
                },
            ),
        ];
        if let (Some(held), Some(first)) = (self.partitions_held, self.partitions_first) {
            f.push((
                "partitions",
                format!("{held} of 256 held, first in preference for {first}"),
            ));
        }
        if let Some(e) = &self.error {
            f.push(("damaged", e.clone()));
        }
        if let Some(c) = &self.records {
            f.push((
                "records",
                format!(
                    "{} values, {} expired, {} tombstones{}",
                    c.values,
                    c.expired,
                    c.tombstones,
                    damaged(c.damaged_records)
                ),
            ));
            let targets: Vec<String> = c
                .hints_by_target
                .iter()
                .map(|(t, n)| format!("{n} for {}", t.trim_start_matches('0')))
                .collect();
            f.push((
                "hints",
                format!(
                    "{}{}{}",
                    c.hints,
                    if targets.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", targets.join(", "))
                    },
                    damaged(c.damaged_hints)
                ),
            ));
        }
        output::fields(out, 2, &f);
        if self.records.is_none() {
            out.push_str("  (kvtool inspect --exact counts records, tombstones and hints)\n");
        }
    }
}

fn damaged(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {n} DAMAGED (run kvtool verify)")
    }
}

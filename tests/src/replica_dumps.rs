//! Comparing the replicas of a stopped cluster offline, with `kvtool dump` on each
//! node's data directory (docs/kvtool-dump.md, "Cluster node directories"): every node
//! holds only the partitions its `cluster/layout.json` gives it, and the replicas of a
//! partition dump byte-identically. kvd is not asked anything: this reads the
//! directories as they are on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `kvtool` binary beside the kvd binary these tests run (`cargo test --workspace`
/// builds it); `KVTOOL_BIN` overrides. `None` if there is none.
pub fn kvtool_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KVTOOL_BIN") {
        return Some(PathBuf::from(p));
    }
    let bin = crate::kvd_binary().with_file_name("kvtool");
    bin.exists().then_some(bin)
}

/// What one node's directory holds, as `kvtool dump` writes it.
#[derive(Debug)]
pub struct NodeDump {
    /// The node's id (`cluster/node.json`).
    pub node: String,
    /// The version of the layout in `cluster/layout.json`.
    pub layout_version: u64,
    /// Partition -> the node ids that the layout names as its replicas.
    pub replicas: Vec<BTreeSet<String>>,
    /// Partition -> its dump lines, in dump order (partitions without records absent).
    pub partitions: BTreeMap<u16, Vec<String>>,
}

impl NodeDump {
    /// Every record line of the node, with its database, key and value as the dump
    /// writes them (tombstones have type `tombstone`).
    pub fn records(&self) -> impl Iterator<Item = serde_json::Value> + '_ {
        self.partitions
            .values()
            .flatten()
            .map(|l| serde_json::from_str(l).expect("a dump line is JSON"))
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The bytes a dump string stands for: one character per byte (docs/kvtool-dump.md).
fn dump_bytes(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a dump character is one byte"))
        .collect()
}

/// Runs `kvtool dump` on the stopped node's directory `dir` and reads its layout.
pub fn dump_node(kvtool: &Path, dir: &Path) -> NodeDump {
    let out = Command::new(kvtool)
        .arg("dump")
        .arg(dir)
        .output()
        .expect("run kvtool");
    assert!(
        out.status.success(),
        "kvtool dump {} exited {:?}: {}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("a dump is ASCII");
    let mut partitions: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("a dump line is JSON");
        let key = record["key"].as_str().expect("key");
        let p = kv_keyspace::slot::key_partition(&dump_bytes(key));
        partitions.entry(p).or_default().push(line.to_string());
    }
    let node = read_json(&dir.join("cluster/node.json"));
    let layout = read_json(&dir.join("cluster/layout.json"));
    let replicas = layout["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|ids| {
            ids.as_array()
                .expect("a preference list")
                .iter()
                .map(|id| id.as_str().expect("a node id").to_string())
                .collect()
        })
        .collect();
    NodeDump {
        node: node["node_id"].as_str().expect("node_id").to_string(),
        layout_version: layout["version"].as_u64().expect("layout version"),
        replicas,
        partitions,
    }
}

/// Checks the dumps of every node of a stopped cluster: all hold the same layout
/// version, each holds records of no partition its layout does not give it, and every
/// partition's replicas dump byte-identically (a replica without records of a partition
/// that another replica has differs). Returns how many partitions hold records.
pub fn assert_replicas_dump_identically(dumps: &[NodeDump]) -> usize {
    let version = dumps[0].layout_version;
    for d in dumps {
        assert_eq!(d.layout_version, version, "node {} layout version", d.node);
        assert_eq!(d.replicas, dumps[0].replicas, "node {} placement", d.node);
        for (p, lines) in &d.partitions {
            assert!(
                d.replicas[usize::from(*p)].contains(&d.node),
                "node {} holds {} records of partition {p}, which layout {version} gives to {:?}, e.g. {:?}",
                d.node,
                lines.len(),
                d.replicas[usize::from(*p)],
                &lines[..lines.len().min(3)]
            );
        }
    }
    let empty = Vec::new();
    let mut held = 0;
    for (p, ids) in dumps[0].replicas.iter().enumerate() {
        let p = u16::try_from(p).expect("256 partitions");
        let lines: Vec<(&str, &Vec<String>)> = dumps
            .iter()
            .filter(|d| ids.contains(&d.node))
            .map(|d| (d.node.as_str(), d.partitions.get(&p).unwrap_or(&empty)))
            .collect();
        assert_eq!(lines.len(), ids.len(), "every replica of {p} was dumped");
        for pair in lines.windows(2) {
            if pair[0].1 != pair[1].1 {
                let diff: Vec<&String> = pair[0]
                    .1
                    .iter()
                    .filter(|l| !pair[1].1.contains(l))
                    .chain(pair[1].1.iter().filter(|l| !pair[0].1.contains(l)))
                    .take(5)
                    .collect();
                panic!(
                    "partition {p}: nodes {} ({} records) and {} ({} records) dump differently, e.g. {diff:?}",
                    pair[0].0,
                    pair[0].1.len(),
                    pair[1].0,
                    pair[1].1.len()
                );
            }
        }
        if !lines[0].1.is_empty() {
            held += 1;
        }
    }
    held
}

//! A cluster node's data directory, as kvtool reads it offline: the node's identity and
//! layout in `<dir>/cluster/` (docs/format/cluster-layout.md) and, in its one engine
//! database, the replicated records and hints (docs/format/cluster-storage.md). Every
//! decoding is kv-cluster's own, so kvtool reads what the node would.

use kv_cluster::hints::decode_hint;
use kv_cluster::layout::Layout;
use kv_cluster::node::identity::{cluster_dir, Identity};
use kv_cluster::replica_store::REPLICATED_KEYSPACE;
use kv_cluster::{NodeId, Record};
use kv_keyspace::data_key::split_data_key;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Engine keyspace of the hints a node keeps for others (kv-cluster's hint store).
pub const HINTS_KEYSPACE: &str = "hints";

/// Who a cluster node is and what it holds, from `<dir>/cluster/`.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    /// This node's id.
    pub node_id: NodeId,
    /// Its cluster, once bootstrap made one.
    pub cluster_id: Option<String>,
    /// The layout it holds (`None` before the first layout).
    pub layout: Option<Layout>,
}

impl NodeFacts {
    /// The partitions this node holds a replica of (`None` without a layout).
    pub fn partitions_held(&self) -> Option<Vec<u16>> {
        self.layout.as_ref().map(|l| l.partitions_of(self.node_id))
    }

    /// How many partitions list this node first.
    pub fn partitions_first(&self) -> usize {
        self.layout.as_ref().map_or(0, |l| {
            l.partitions
                .iter()
                .filter(|p| p.first() == Some(&self.node_id))
                .count()
        })
    }
}

/// Whether `dir` belongs to a cluster node (kvd writes `cluster/node.json` at its first
/// start in cluster mode).
pub fn is_cluster_node(dir: &Path) -> bool {
    cluster_dir(dir).join("node.json").exists()
}

/// The node's identity and layout; `Ok(None)` for a directory that is not a cluster
/// node's; `Err` names a damaged file. Reads only: nothing is created or repaired.
pub fn read_facts(dir: &Path) -> Result<Option<NodeFacts>, String> {
    let files = cluster_dir(dir);
    let node_file = files.join("node.json");
    let bytes = match std::fs::read(&node_file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", node_file.display())),
    };
    let identity: Identity = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is damaged: {e}", node_file.display()))?;
    let node_id = NodeId::parse(&identity.node_id)
        .filter(|_| identity.format == 1)
        .ok_or_else(|| format!("{}: not a node id of format 1", node_file.display()))?;
    let layout = Layout::load(&files.join("layout.json")).map_err(|e| e.to_string())?;
    Ok(Some(NodeFacts {
        node_id,
        cluster_id: identity.cluster_id,
        layout,
    }))
}

/// What one stored entry of the `replicated` keyspace is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicatedEntry {
    /// A record that decodes: (database, Redis key, record).
    Record(u32, Vec<u8>, Record),
    /// Bytes that are not a replicated record, and why.
    Damaged(String),
}

/// Decodes one entry of the `replicated` keyspace (engine key without its keyspace byte).
pub fn decode_replicated(engine_key: &[u8], value: &[u8]) -> ReplicatedEntry {
    let Some(parts) = split_data_key(engine_key) else {
        return ReplicatedEntry::Damaged(format!(
            "engine key \"{}\": slot or hash does not match the key",
            crate::escape::escape(engine_key)
        ));
    };
    match Record::decode(&bytes::Bytes::copy_from_slice(value)) {
        Some(r) => ReplicatedEntry::Record(parts.ns, parts.key.to_vec(), r),
        None => ReplicatedEntry::Damaged(format!(
            "db {} key \"{}\": the replicated record does not decode",
            parts.ns,
            crate::escape::escape(parts.key)
        )),
    }
}

/// The replicated keyspace's name, re-exported for callers matching keyspace names.
pub const REPLICATED: &str = REPLICATED_KEYSPACE;

/// Descriptions of damaged entries kept for a report; the rest are only counted.
const DAMAGE_LISTED: usize = 100;

/// What a walk over a node's live engine entries found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RecordCounts {
    /// Replicated records holding a value that has not expired.
    pub values: u64,
    /// Replicated records holding a value whose expiry has passed (kept as records:
    /// expiring never makes a version).
    pub expired: u64,
    /// Replicated records that are tombstones (deleted keys).
    pub tombstones: u64,
    /// Entries of the `replicated` keyspace that do not decode.
    pub damaged_records: u64,
    /// Hints kept for other nodes.
    pub hints: u64,
    /// Hints per target node (id as CLUSTER NODES shows it).
    pub hints_by_target: BTreeMap<String, u64>,
    /// Entries of the `hints` keyspace that do not decode.
    pub damaged_hints: u64,
}

/// Classifies a node's live engine entries (the newest version of each key) into
/// [`RecordCounts`], decoding each with kv-cluster's decoders.
#[derive(Debug)]
pub struct RecordWalk {
    replicated: Option<u8>,
    hints: Option<u8>,
    now_ms: i64,
    /// What was found so far.
    pub counts: RecordCounts,
    /// The first damaged entries, described (key, what is wrong).
    pub damage: Vec<String>,
}

impl RecordWalk {
    /// A walk over a directory whose engine keyspaces are `keyspaces` (id -> name);
    /// values expiring at or before `now_ms` count as expired.
    pub fn new(keyspaces: &BTreeMap<u8, String>, now_ms: i64) -> RecordWalk {
        let id = |name: &str| {
            keyspaces
                .iter()
                .find(|(_, n)| n.as_str() == name)
                .map(|(&id, _)| id)
        };
        RecordWalk {
            replicated: id(REPLICATED),
            hints: id(HINTS_KEYSPACE),
            now_ms,
            counts: RecordCounts::default(),
            damage: Vec::new(),
        }
    }

    /// Looks at one live entry of keyspace `ks`.
    pub fn visit(&mut self, ks: u8, key: &[u8], value: &[u8]) {
        if Some(ks) == self.replicated {
            match decode_replicated(key, value) {
                ReplicatedEntry::Record(_, _, r) => match r.live_value(self.now_ms) {
                    Some(_) => self.counts.values += 1,
                    None if r.body == kv_cluster::Body::Tombstone => self.counts.tombstones += 1,
                    None => self.counts.expired += 1,
                },
                ReplicatedEntry::Damaged(what) => {
                    self.counts.damaged_records += 1;
                    self.note(format!("keyspace {REPLICATED}: {what}"));
                }
            }
        } else if Some(ks) == self.hints {
            let target = key
                .get(..8)
                .filter(|_| key.len() == 16)
                .and_then(|b| b.try_into().ok())
                .map(|b| NodeId(u64::from_be_bytes(b)));
            match (target, decode_hint(&bytes::Bytes::copy_from_slice(value))) {
                (Some(target), Some(_)) => {
                    self.counts.hints += 1;
                    *self
                        .counts
                        .hints_by_target
                        .entry(target.to_string())
                        .or_default() += 1;
                }
                _ => {
                    self.counts.damaged_hints += 1;
                    self.note(format!(
                        "keyspace {HINTS_KEYSPACE}: hint \"{}\" does not decode",
                        crate::escape::escape(key)
                    ));
                }
            }
        }
    }

    fn note(&mut self, what: String) {
        if self.damage.len() < DAMAGE_LISTED {
            self.damage.push(what);
        }
    }
}

//! The layout document: which nodes are in the cluster and, for each of the 256
//! partitions, its replicas in preference order. Every node holds the same document
//! (`<dir>/cluster/layout.json`); placement is a pure function of it and the key.
//! Format: docs/format/cluster-layout.md.

use crate::atomic_file::write_atomically;
use crate::placement::{self, PlacementError};
use crate::NodeId;
use kv_keyspace::slot::{key_partition, PARTITIONS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// The layout document format this code writes for a layout without a transition (the
/// `format` field). A change that older code would misread bumps it.
pub const LAYOUT_FORMAT: u32 = 1;

/// The format of a layout with a transition under way: code that knows only format 1
/// would ignore the transition and read from replicas that do not hold the data yet, so
/// it must refuse such a document rather than misread it (a rolling upgrade finishes
/// before the layout changes).
pub const LAYOUT_FORMAT_TRANSITION: u32 = 2;

/// Largest layout document accepted, from a file or a peer: far above any real layout
/// (256 partitions of a few ids plus one line per node), so a damaged or hostile input
/// cannot make a node allocate without bound.
pub const MAX_LAYOUT_BYTES: usize = 8 << 20;

/// One member of the cluster as the layout records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's permanent id (in JSON, the 40 hex digits CLUSTER NODES shows).
    #[serde(with = "hex_id")]
    pub id: NodeId,
    /// Where clients reach it (RESP), `host:port`.
    pub resp_addr: String,
    /// Where peers reach it (cluster bus), `host:port`.
    pub bus_addr: String,
    /// Failure domain (rack, host, availability zone): replicas of a partition go to
    /// distinct zones when there are enough zones. Any string; nodes with equal strings
    /// share a zone.
    pub zone: String,
    /// Relative share of data this node should hold (any unit; only ratios matter).
    pub capacity: u32,
}

/// The versioned layout document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The cluster's identity: 32 lowercase hex digits chosen at bootstrap. A node
    /// refuses peers whose cluster id differs.
    pub cluster_id: String,
    /// Increases by one with every layout change; the first layout is version 1.
    pub version: u64,
    /// Replicas per partition (N).
    pub replicas: usize,
    /// The members, sorted by id, ids distinct.
    pub nodes: Vec<NodeInfo>,
    /// For each partition (index = partition), `replicas` distinct node ids in
    /// preference order.
    #[serde(with = "hex_id_lists")]
    pub partitions: Vec<Vec<NodeId>>,
    /// While data moves from the previous layout's replicas to this one's: where it comes
    /// from (`layout/transition.rs`, docs/cluster.md "Changing the layout"). Absent once
    /// every new replica holds its partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
}

/// The previous layout's placement, kept while a layout change is under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The version of the layout data moves away from.
    pub from_version: u64,
    /// Its members that are not members of this layout (leaving or replaced): they stay
    /// sources of their partitions until the transition ends. Sorted by id.
    pub departing: Vec<NodeInfo>,
    /// Its preference lists, one per partition.
    #[serde(with = "hex_id_lists")]
    pub partitions: Vec<Vec<NodeId>>,
    /// Departing nodes the operator replaced (declared dead): the change does not wait
    /// for them to acknowledge it, as a node that never comes back never would.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "hex_ids")]
    pub replaced: Vec<NodeId>,
    /// Set in the change's second version, made once every new replica copied its
    /// partitions: reads use the new replicas, but writes still need a quorum of the
    /// previous ones too, because a node that has not learned this version yet still
    /// reads them. The third version, made once every node acknowledged this one, drops
    /// the transition (`layout/transition.rs`; found by the simulation, docs/cluster.md).
    /// Absent (false) in documents of older kvd, which read such a layout as the first
    /// version: reads on the previous replicas and writes to both, which is safe.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reads_moved: bool,
}

/// What is wrong with a layout, or with reading or writing one.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The nodes and replica count cannot be placed.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// The cluster id is not 32 lowercase hex digits.
    #[error("cluster id {0:?} is not 32 lowercase hex digits")]
    BadClusterId(String),
    /// Version 0 (layouts start at 1), or no version left after this one.
    #[error("layout version must be between 1 and 2^64-1")]
    ZeroVersion,
    /// Nodes not in increasing id order.
    #[error("nodes are not sorted by id (node {0} is out of order)")]
    NodesNotSorted(NodeId),
    /// A node without an address.
    #[error("node {node} has an empty {which} address")]
    MissingAddress {
        /// The node.
        node: NodeId,
        /// `resp` or `bus`.
        which: &'static str,
    },
    /// Not 256 partitions.
    #[error("the layout lists {0} partitions; kvd has exactly 256")]
    PartitionCount(usize),
    /// A partition's replica list breaks an invariant.
    #[error("partition {partition}: {problem}")]
    BadPartition {
        /// The partition.
        partition: usize,
        /// What is wrong.
        problem: String,
    },
    /// Not a layout document at all (bad JSON, a missing field, too large).
    #[error("not a layout document: {0}")]
    Malformed(String),
    /// A document of a format this code does not know.
    #[error("layout format {0} is not supported (this kvd reads formats 1 and 2; was it written by a newer kvd?)")]
    UnsupportedFormat(u32),
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A layout change that cannot be made (docs/cluster.md, "Changing the layout").
    #[error("{0}")]
    Change(String),
    /// The file exists but is damaged or invalid. It is left exactly as it was.
    #[error("layout file {path} is damaged or invalid: {source}. kvd left it untouched; restore it from a backup or from another node's copy (every node holds the same layout)")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        source: Box<LayoutError>,
    },
}

/// A fresh random cluster id: 128 random bits as 32 lowercase hex digits.
pub fn new_cluster_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn is_cluster_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The `format` field alone, read before the rest so an unknown format is reported as
/// such rather than as whatever field it lacks.
#[derive(Deserialize)]
struct FormatOnly {
    format: Option<u32>,
}

/// The document as written: the format number, then the layout's fields.
#[derive(Serialize)]
struct Document<'a> {
    format: u32,
    #[serde(flatten)]
    layout: &'a Layout,
}

impl Layout {
    /// The first layout of a cluster (version 1): `replicas` replicas of every
    /// partition over `nodes` (in any order), placed by [`placement::assign`].
    pub fn initial(
        cluster_id: String,
        mut nodes: Vec<NodeInfo>,
        replicas: usize,
    ) -> Result<Layout, LayoutError> {
        if !is_cluster_id(&cluster_id) {
            return Err(LayoutError::BadClusterId(cluster_id));
        }
        nodes.sort_by_key(|n| n.id);
        let partitions = placement::assign(&nodes, replicas)?;
        let layout = Layout {
            cluster_id,
            version: 1,
            replicas,
            nodes,
            partitions,
            transition: None,
        };
        layout.validate()?;
        Ok(layout)
    }

    /// The next layout (version + 1, same cluster id) for a new member list and replica
    /// count, moving as few replica assignments as the new balance allows
    /// ([`placement::rebalance`]). The caller decides when (an explicit admin action;
    /// never a side effect of failure detection).
    pub fn rebalanced(
        &self,
        mut nodes: Vec<NodeInfo>,
        replicas: usize,
    ) -> Result<Layout, LayoutError> {
        nodes.sort_by_key(|n| n.id);
        let partitions = placement::rebalance(&self.partitions, &nodes, replicas)?;
        let layout = Layout {
            cluster_id: self.cluster_id.clone(),
            version: self
                .version
                .checked_add(1)
                .ok_or(LayoutError::ZeroVersion)?,
            replicas,
            nodes,
            partitions,
            transition: None,
        };
        layout.validate()?;
        Ok(layout)
    }

    /// Replica assignments (partition, node) in `other` that are not in `self`: the
    /// data that must be copied to make `other` current.
    pub fn moved_assignments(&self, other: &Layout) -> usize {
        (0..PARTITIONS)
            .map(|p| {
                other
                    .preflist(p)
                    .iter()
                    .filter(|id| !self.preflist(p).contains(id))
                    .count()
            })
            .sum()
    }

    /// The replicas of `partition` in preference order (empty for a partition number
    /// out of range).
    pub fn preflist(&self, partition: u16) -> &[NodeId] {
        self.partitions
            .get(usize::from(partition))
            .map_or(&[], Vec::as_slice)
    }

    /// The replicas of the partition that holds `key`, in preference order.
    pub fn key_preflist(&self, key: &[u8]) -> &[NodeId] {
        self.preflist(key_partition(key))
    }

    /// A member by id, or a departing node of the transition under way.
    pub fn node(&self, id: NodeId) -> Option<&NodeInfo> {
        self.member(id).or_else(|| {
            self.transition
                .as_ref()
                .and_then(|t| t.departing.iter().find(|n| n.id == id))
        })
    }

    /// A member of this layout by id (departing nodes are not members).
    pub fn member(&self, id: NodeId) -> Option<&NodeInfo> {
        self.nodes
            .binary_search_by_key(&id, |n| n.id)
            .ok()
            .and_then(|i| self.nodes.get(i))
    }

    /// The partitions `id` holds a replica of, in increasing order: during a transition,
    /// those it receives and those it still serves as a source.
    pub fn partitions_of(&self, id: NodeId) -> Vec<u16> {
        (0..PARTITIONS)
            .filter(|&p| self.holders(p).contains(&id))
            .collect()
    }

    /// How many partitions this layout's preference lists give `id` (a transition's
    /// previous placement aside).
    pub fn preflist_count(&self, id: NodeId) -> usize {
        self.partitions.iter().filter(|l| l.contains(&id)).count()
    }

    /// Checks every invariant a layout must satisfy (whoever made it: this node,
    /// a file, a peer): a well-formed cluster id, version at least 1, nodes sorted by
    /// distinct id with addresses and non-zero capacity, at least `replicas` nodes, 256
    /// partitions each of `replicas` distinct known nodes, in distinct zones when
    /// there are at least `replicas` zones.
    pub fn validate(&self) -> Result<(), LayoutError> {
        if !is_cluster_id(&self.cluster_id) {
            return Err(LayoutError::BadClusterId(self.cluster_id.clone()));
        }
        if self.version == 0 {
            return Err(LayoutError::ZeroVersion);
        }
        placement::check_nodes(&self.nodes, self.replicas)?;
        for pair in self.nodes.windows(2) {
            if pair[0].id >= pair[1].id {
                return Err(LayoutError::NodesNotSorted(pair[1].id));
            }
        }
        for node in &self.nodes {
            for (which, addr) in [("resp", &node.resp_addr), ("bus", &node.bus_addr)] {
                if addr.is_empty() {
                    return Err(LayoutError::MissingAddress {
                        node: node.id,
                        which,
                    });
                }
            }
        }
        if self.partitions.len() != usize::from(PARTITIONS) {
            return Err(LayoutError::PartitionCount(self.partitions.len()));
        }
        let zones_distinct = placement::zones_kept_distinct(&self.nodes, self.replicas);
        for (partition, list) in self.partitions.iter().enumerate() {
            self.check_preflist(list, zones_distinct)
                .map_err(|problem| LayoutError::BadPartition { partition, problem })?;
        }
        self.validate_transition()
    }

    fn check_preflist(&self, list: &[NodeId], zones_distinct: bool) -> Result<(), String> {
        if list.len() != self.replicas {
            return Err(format!(
                "{} replicas listed, the layout has {}",
                list.len(),
                self.replicas
            ));
        }
        let mut ids = BTreeSet::new();
        let mut zones = BTreeSet::new();
        for &id in list {
            let node = self
                .member(id)
                .ok_or_else(|| format!("node {id} is not a member"))?;
            if !ids.insert(id) {
                return Err(format!("node {id} is listed twice"));
            }
            if zones_distinct && !zones.insert(node.zone.as_str()) {
                return Err(format!("two replicas in zone {:?}", node.zone));
            }
        }
        Ok(())
    }

    /// The document as JSON (with its `format`), for the file and for peers.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain structs of strings and integers always serialize; the fallible form is
        // what `save` uses, so even an impossible failure never writes an empty file.
        self.encode().unwrap_or_default()
    }

    fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let format = match self.transition {
            Some(_) => LAYOUT_FORMAT_TRANSITION,
            None => LAYOUT_FORMAT,
        };
        serde_json::to_vec_pretty(&Document {
            format,
            layout: self,
        })
    }

    /// Parses and validates a document from [`Layout::to_json`]. Never panics; the
    /// input may come from a damaged file or a peer.
    pub fn from_json(bytes: &[u8]) -> Result<Layout, LayoutError> {
        if bytes.len() > MAX_LAYOUT_BYTES {
            return Err(LayoutError::Malformed(format!(
                "{} bytes, more than the {MAX_LAYOUT_BYTES} a layout may have",
                bytes.len()
            )));
        }
        let malformed = |e: serde_json::Error| LayoutError::Malformed(e.to_string());
        match serde_json::from_slice::<FormatOnly>(bytes).map_err(malformed)? {
            FormatOnly {
                format: Some(LAYOUT_FORMAT | LAYOUT_FORMAT_TRANSITION),
            } => {}
            FormatOnly {
                format: Some(other),
            } => return Err(LayoutError::UnsupportedFormat(other)),
            FormatOnly { format: None } => {
                return Err(LayoutError::Malformed("no \"format\" field".into()))
            }
        }
        let layout: Layout = serde_json::from_slice(bytes).map_err(malformed)?;
        layout.validate()?;
        Ok(layout)
    }

    /// Writes the document to `path` atomically (temporary file, fsync, rename, fsync
    /// of the directory): a crash leaves the old document or the new one.
    pub fn save(&self, path: &Path) -> Result<(), LayoutError> {
        let io_error = |source| LayoutError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = self.encode().map_err(|e| io_error(e.into()))?;
        write_atomically(path, &bytes).map_err(io_error)
    }

    /// Reads the document at `path`: `None` if there is no file (a node not yet in a
    /// cluster), an error naming the file if it cannot be read or is damaged or invalid
    /// (the file is never modified or replaced here).
    pub fn load(path: &Path) -> Result<Option<Layout>, LayoutError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LayoutError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Layout::from_json(&bytes)
            .map(Some)
            .map_err(|source| LayoutError::File {
                path: path.to_path_buf(),
                source: Box::new(source),
            })
    }
}

/// Node ids in JSON as the 40 hex digits of [`NodeId`]'s `Display` (what CLUSTER NODES
/// and CLUSTER MYID show), not as integers: tools such as jq read JSON numbers as
/// doubles and would corrupt ids above 2^53.
mod hex_id {
    use crate::NodeId;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &NodeId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NodeId, D::Error> {
        parse(&String::deserialize(d)?)
    }

    pub fn parse<E: Error>(s: &str) -> Result<NodeId, E> {
        NodeId::parse(s).ok_or_else(|| E::custom(format!("{s:?} is not a 40-hex-digit node id")))
    }
}

/// Node id lists with [`hex_id`] ids.
mod hex_ids {
    use crate::NodeId;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(ids: &[NodeId], s: S) -> Result<S::Ok, S::Error> {
        let hex: Vec<String> = ids.iter().map(NodeId::to_string).collect();
        hex.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NodeId>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| super::hex_id::parse(s))
            .collect()
    }
}

/// The partitions' preference lists with [`hex_id`] ids.
mod hex_id_lists {
    use crate::NodeId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(lists: &[Vec<NodeId>], s: S) -> Result<S::Ok, S::Error> {
        let text: Vec<Vec<String>> = lists
            .iter()
            .map(|list| list.iter().map(NodeId::to_string).collect())
            .collect();
        s.collect_seq(text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<NodeId>>, D::Error> {
        Vec::<Vec<String>>::deserialize(d)?
            .iter()
            .map(|list| list.iter().map(|s| super::hex_id::parse(s)).collect())
            .collect()
    }
}

pub mod driver;
mod transition;
pub use transition::{LayoutChange, LayoutPlan};

#[cfg(test)]
mod tests;

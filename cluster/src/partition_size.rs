//! How much data a layout change moves (docs/cluster.md, "Changing the layout"): each
//! holder measures its partitions (a counted scan of the partition's engine key range,
//! replica_store/size.rs), and the plan adds up the partitions every new replica must
//! receive. Bytes are the engine's key and value bytes, what a snapshot stream sends.

use crate::layout::Layout;
use crate::NodeId;
use kv_keyspace::slot::PARTITIONS;
use std::collections::BTreeMap;

/// The records of one partition on one replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionSize {
    /// Records (values, tombstones and consensus records alike).
    pub keys: u64,
    /// Engine key and value bytes of those records.
    pub bytes: u64,
}

/// One partition that gains replicas in a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMove {
    /// The partition.
    pub partition: u16,
    /// Nodes that hold it after the change and not before: each receives a copy.
    pub to: Vec<NodeId>,
    /// Its size on a current holder, if one answered.
    pub size: Option<PartitionSize>,
}

/// What a change moves in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoveTotals {
    /// Bytes sent to new replicas (a partition copied to two nodes counts twice).
    pub bytes: u64,
    /// Records sent to new replicas, counted the same way.
    pub keys: u64,
    /// Partitions whose size no holder reported (not in the totals).
    pub unknown: usize,
}

/// The partitions that gain replicas from `current` to `next`, each with the nodes
/// that receive it, and its size from `sizes` where known.
pub fn moves(
    current: &Layout,
    next: &Layout,
    sizes: &BTreeMap<u16, PartitionSize>,
) -> Vec<PartitionMove> {
    (0..PARTITIONS)
        .filter_map(|p| {
            let before = current.preflist(p);
            let to: Vec<NodeId> = next
                .preflist(p)
                .iter()
                .copied()
                .filter(|n| !before.contains(n))
                .collect();
            (!to.is_empty()).then(|| PartitionMove {
                partition: p,
                to,
                size: sizes.get(&p).copied(),
            })
        })
        .collect()
}

/// The bytes and records `moves` send in all.
pub fn totals(moves: &[PartitionMove]) -> MoveTotals {
    let mut t = MoveTotals::default();
    for m in moves {
        match m.size {
            Some(s) => {
                let copies = m.to.len() as u64;
                t.bytes += s.bytes * copies;
                t.keys += s.keys * copies;
            }
            None => t.unknown += 1,
        }
    }
    t
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::layout::{LayoutChange, NodeInfo};

    /// A member on loopback, without zone (also for node/copy_progress.rs's tests).
    pub(crate) fn node(id: u64) -> NodeInfo {
        NodeInfo {
            id: NodeId(id),
            resp_addr: format!("127.0.0.1:{}", 7000 + id),
            bus_addr: format!("127.0.0.1:{}", 17000 + id),
            zone: String::new(),
            capacity: 1,
        }
    }

    /// Three nodes hold everything; a fourth joins. Every partition has a known size
    /// (partition p: p + 1 records of 100 bytes), so the totals are checked against a
    /// count made from the placement itself.
    #[test]
    fn a_join_moves_the_bytes_of_the_partitions_the_new_node_receives() {
        let current = Layout::initial(
            crate::layout::new_cluster_id(),
            vec![node(1), node(2), node(3)],
            3,
        )
        .unwrap();
        let plan = current
            .plan(&[LayoutChange::Assign { node: node(4) }])
            .unwrap();
        let sizes: BTreeMap<u16, PartitionSize> = (0..PARTITIONS)
            .map(|p| {
                let keys = u64::from(p) + 1;
                (
                    p,
                    PartitionSize {
                        keys,
                        bytes: keys * 100,
                    },
                )
            })
            .collect();
        let moved = moves(&current, &plan.next, &sizes);
        // Only node 4 is new, and it receives each moving partition once.
        assert!(moved.iter().all(|m| m.to == vec![NodeId(4)]));
        assert_eq!(moved.len(), plan.moved);
        let expected_keys: u64 = (0..PARTITIONS)
            .filter(|&p| plan.next.preflist(p).contains(&NodeId(4)))
            .map(|p| u64::from(p) + 1)
            .sum();
        let t = totals(&moved);
        assert_eq!(t.keys, expected_keys);
        assert_eq!(t.bytes, expected_keys * 100);
        assert_eq!(t.unknown, 0);
        assert!(t.bytes > 0);
    }

    #[test]
    fn partitions_without_a_size_are_counted_apart_and_copies_multiply() {
        let m = vec![
            PartitionMove {
                partition: 0,
                to: vec![NodeId(4), NodeId(5)],
                size: Some(PartitionSize {
                    keys: 3,
                    bytes: 300,
                }),
            },
            PartitionMove {
                partition: 1,
                to: vec![NodeId(4)],
                size: None,
            },
        ];
        assert_eq!(
            totals(&m),
            MoveTotals {
                bytes: 600,
                keys: 6,
                unknown: 1
            }
        );
    }
}

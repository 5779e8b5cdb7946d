//! Which node a Redis Cluster-aware client is told owns each slot (`cluster-compat yes`;
//! docs/cluster.md, "Redis Cluster-aware clients"). Any kvd node coordinates any key, so
//! the choice only spreads clients' requests and splits per-node KEYS/SCAN/DBSIZE: each
//! partition's 64 slots go to the first node of its preference list that this node's
//! failure detector sees up, so the slots of a dead node move to the survivors. A
//! partition with no replica up goes to this node (always up to itself), so the 16384
//! slots are always covered, each by exactly one node.

use kv_cluster::partition_set::PartitionSet;
use kv_cluster::replica_api::PeerState;
use kv_cluster::view::ClusterView;
use kv_cluster::NodeId;
use kv_keyspace::slot::SLOTS_PER_PARTITION;

/// The advertised owner of every partition, as one node sees the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedSlots {
    /// Index = partition; empty before the first layout (no slot is advertised).
    owners: Vec<NodeId>,
}

/// Slots `first..=last` advertised as `owner`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRange {
    /// First slot.
    pub first: u16,
    /// Last slot, included.
    pub last: u16,
    /// The node a client is told to send these slots' keys to.
    pub owner: NodeId,
}

impl AdvertisedSlots {
    /// The owners `view` implies.
    pub fn of(view: &ClusterView) -> AdvertisedSlots {
        let up = |id: &NodeId| {
            view.nodes
                .iter()
                .any(|n| n.id == *id && n.state == PeerState::Up)
        };
        let owners = view
            .partitions
            .iter()
            .map(|pref| pref.iter().copied().find(|id| up(id)).unwrap_or(view.me))
            .collect();
        AdvertisedSlots { owners }
    }

    /// The partitions advertised as `node`'s.
    pub fn partitions_of(&self, node: NodeId) -> Vec<u16> {
        (0u16..)
            .zip(&self.owners)
            .filter(|(_, owner)| **owner == node)
            .map(|(p, _)| p)
            .collect()
    }

    /// [`AdvertisedSlots::partitions_of`] as a set, for a scan.
    pub fn scope_of(&self, node: NodeId) -> PartitionSet {
        self.partitions_of(node).into_iter().collect()
    }

    /// Every advertised range, in slot order, adjacent slots of one owner merged (as
    /// Redis's CLUSTER SLOTS lists them).
    pub fn ranges(&self) -> Vec<SlotRange> {
        let mut out: Vec<SlotRange> = Vec::new();
        for (p, &owner) in (0u16..).zip(&self.owners) {
            let (first, last) = partition_slots(p);
            match out.last_mut() {
                Some(r) if r.owner == owner && r.last + 1 == first => r.last = last,
                _ => out.push(SlotRange { first, last, owner }),
            }
        }
        out
    }
}

/// The first and last slot of `partition`.
fn partition_slots(partition: u16) -> (u16, u16) {
    let first = partition * SLOTS_PER_PARTITION;
    (first, first + SLOTS_PER_PARTITION - 1)
}

/// Slot ranges covered by `partitions`, merging neighbours.
pub fn slot_ranges(partitions: &[u16]) -> Vec<(u16, u16)> {
    let mut sorted = partitions.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for p in sorted {
        let (first, last) = partition_slots(p);
        match out.last_mut() {
            Some(r) if r.1 + 1 == first => r.1 = last,
            _ => out.push((first, last)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_cluster::view::{ClusterCounters, NodeView};
    use kv_keyspace::slot::{PARTITIONS, SLOTS};

    fn node(id: u64, state: PeerState) -> NodeView {
        NodeView {
            myself: id == 1,
            ..NodeView::bare(NodeId(id), format!("127.0.0.1:{}", 7000 + id), state)
        }
    }

    /// Three nodes; partition p prefers nodes p, p+1, p+2 (mod 3), but partitions
    /// 10..20 all prefer node 2 first, so neighbours share an owner.
    fn view(states: [PeerState; 3]) -> ClusterView {
        let partitions = (0..PARTITIONS as u64)
            .map(|p| {
                let first = if (10..20).contains(&p) { 1 } else { p % 3 };
                (0..3).map(|i| NodeId((first + i) % 3 + 1)).collect()
            })
            .collect();
        ClusterView {
            me: NodeId(1),
            layout_version: 1,
            replicas: 3,
            write_quorum: 2,
            read_quorum: 2,
            nodes: (0..3).map(|i| node(i as u64 + 1, states[i])).collect(),
            partitions,
            counters: ClusterCounters::default(),
            rpc: Vec::new(),
        }
    }

    /// Checks the ranges cover every slot once, in order, and that no two neighbours
    /// share an owner (they would have been merged).
    fn assert_covering_and_merged(ranges: &[SlotRange]) {
        let mut next = 0u32;
        for (i, r) in ranges.iter().enumerate() {
            assert_eq!(r.first as u32, next, "gap or overlap before {r:?}");
            assert!(r.last >= r.first);
            next = r.last as u32 + 1;
            if i > 0 {
                assert_ne!(ranges[i - 1].owner, r.owner, "unmerged at {r:?}");
            }
        }
        assert_eq!(next, SLOTS as u32, "every slot covered");
    }

    #[test]
    fn every_slot_goes_to_the_first_live_node_of_its_partition_once() {
        use PeerState::*;
        let all_up = AdvertisedSlots::of(&view([Up, Up, Up]));
        let ranges = all_up.ranges();
        assert_covering_and_merged(&ranges);
        // Partitions 10..20 prefer node 2: one merged range of 640 slots.
        assert!(ranges.contains(&SlotRange {
            first: 10 * 64,
            last: 20 * 64 - 1,
            owner: NodeId(2),
        }));
        assert_eq!(all_up.partitions_of(NodeId(1))[..3], [0, 3, 6]);
        let per_node: usize = (1..=3).map(|n| all_up.partitions_of(NodeId(n)).len()).sum();
        assert_eq!(per_node, PARTITIONS as usize);

        // Nodes suspect or down advertise nothing; their partitions go to nodes up.
        for states in [[Up, Suspect, Up], [Up, Down, Suspect]] {
            let a = AdvertisedSlots::of(&view(states));
            let ranges = a.ranges();
            assert_covering_and_merged(&ranges);
            for r in &ranges {
                assert_eq!(
                    view(states)
                        .nodes
                        .iter()
                        .find(|n| n.id == r.owner)
                        .map(|n| n.state),
                    Some(Up),
                    "{r:?} advertised on a node not up"
                );
            }
            assert!(a.partitions_of(NodeId(2)).is_empty());
        }
        let survivors = AdvertisedSlots::of(&view([Up, Suspect, Suspect]));
        assert_eq!(
            survivors.ranges(),
            vec![SlotRange {
                first: 0,
                last: SLOTS - 1,
                owner: NodeId(1),
            }]
        );
        assert_eq!(survivors.scope_of(NodeId(1)), PartitionSet::ALL);
    }

    #[test]
    fn a_partition_without_a_live_replica_goes_to_this_node() {
        let mut v = view([PeerState::Up, PeerState::Up, PeerState::Up]);
        v.partitions[5] = vec![NodeId(2), NodeId(3)];
        v.nodes[1].state = PeerState::Down;
        v.nodes[2].state = PeerState::Down;
        assert!(AdvertisedSlots::of(&v)
            .partitions_of(NodeId(1))
            .contains(&5));
    }

    #[test]
    fn no_slot_is_advertised_before_the_first_layout() {
        let mut v = view([PeerState::Up; 3]);
        v.partitions.clear();
        let a = AdvertisedSlots::of(&v);
        assert!(a.ranges().is_empty());
        assert!(a.scope_of(NodeId(1)).is_empty());
    }

    #[test]
    fn partitions_merge_into_slot_ranges() {
        assert_eq!(slot_ranges(&[2, 0, 1, 5, 5]), vec![(0, 191), (320, 383)]);
        assert!(slot_ranges(&[]).is_empty());
    }
}

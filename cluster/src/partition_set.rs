//! A set of partitions (0..256) as a bitmap: which partitions a scan visits. A node in
//! Redis Cluster compatibility mode scans only the partitions it advertises
//! (docs/cluster.md, "Redis Cluster-aware clients"); everything else scans them all.

use kv_keyspace::slot::PARTITIONS;

const WORDS: usize = PARTITIONS as usize / 64;

/// Partitions, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionSet {
    bits: [u64; WORDS],
}

impl PartitionSet {
    /// Every partition.
    pub const ALL: PartitionSet = PartitionSet {
        bits: [u64::MAX; WORDS],
    };

    /// No partition.
    pub const NONE: PartitionSet = PartitionSet { bits: [0; WORDS] };

    /// Adds `partition` (partitions past the last are ignored).
    pub fn insert(&mut self, partition: u16) {
        if partition < PARTITIONS {
            self.bits[partition as usize / 64] |= 1 << (partition % 64);
        }
    }

    /// Whether `partition` is in the set.
    pub fn contains(&self, partition: u16) -> bool {
        partition < PARTITIONS && self.bits[partition as usize / 64] & (1 << (partition % 64)) != 0
    }

    /// The first partition of the set at or after `partition`, `None` past the last.
    pub fn first_from(&self, partition: u16) -> Option<u16> {
        (partition..PARTITIONS).find(|&p| self.contains(p))
    }

    /// How many partitions the set holds.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set holds no partition.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromIterator<u16> for PartitionSet {
    fn from_iter<I: IntoIterator<Item = u16>>(iter: I) -> Self {
        let mut set = PartitionSet::NONE;
        for p in iter {
            set.insert(p);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_and_the_next_member() {
        let set: PartitionSet = [0u16, 63, 64, 200, 255, 256].into_iter().collect();
        assert_eq!(set.len(), 5, "256 is past the last partition");
        assert!(set.contains(63) && set.contains(64) && !set.contains(65));
        assert_eq!(set.first_from(0), Some(0));
        assert_eq!(set.first_from(1), Some(63));
        assert_eq!(set.first_from(65), Some(200));
        assert_eq!(set.first_from(256), None);
        assert_eq!(PartitionSet::ALL.len(), PARTITIONS as usize);
        assert!(PartitionSet::NONE.is_empty());
        assert_eq!(PartitionSet::NONE.first_from(0), None);
    }
}

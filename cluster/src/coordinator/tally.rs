//! Counting replica answers toward quorums in one or more replica groups. Outside a
//! layout change a request has one group (the key's N replicas); during one it has two
//! (the new and the previous replicas), and it succeeds only with its quorum in each, so
//! that whichever placement a later request uses, it overlaps this one
//! (docs/cluster.md, "Changing the layout"; CASSANDRA-8346 is what happens otherwise).

use super::ReplicaSet;
use crate::NodeId;

/// One group's count.
struct Group {
    members: Vec<NodeId>,
    needed: usize,
    /// Members the request was sent to (live ones).
    asked: usize,
    yes: usize,
    no: usize,
}

/// Answers counted per group.
pub(crate) struct Tally {
    groups: Vec<Group>,
    yes: usize,
}

impl Tally {
    /// A tally for `set`, each group needing `needed(group size)` positive answers.
    pub(crate) fn new(set: &ReplicaSet, needed: impl Fn(usize) -> usize) -> Tally {
        let groups = set
            .groups
            .iter()
            .map(|members| Group {
                needed: needed(members.len()),
                asked: members
                    .iter()
                    .filter(|m| set.live.iter().any(|t| t.node == **m))
                    .count(),
                members: members.clone(),
                yes: 0,
                no: 0,
            })
            .collect();
        Tally { groups, yes: 0 }
    }

    /// The first group whose live members are fewer than it needs, as (needed, live):
    /// the request cannot succeed and should not be sent.
    pub(crate) fn unavailable(&self) -> Option<(usize, usize)> {
        self.groups
            .iter()
            .find(|g| g.asked < g.needed)
            .map(|g| (g.needed, g.asked))
    }

    /// The most any group needs (for error messages).
    pub(crate) fn needed(&self) -> usize {
        self.groups.iter().map(|g| g.needed).max().unwrap_or(0)
    }

    /// Positive answers so far (from distinct nodes).
    pub(crate) fn yes_count(&self) -> usize {
        self.yes
    }

    /// Counts a positive answer from `node`; true once every group has its quorum.
    pub(crate) fn yes(&mut self, node: NodeId) -> bool {
        self.yes += 1;
        for g in self.groups.iter_mut().filter(|g| g.members.contains(&node)) {
            g.yes += 1;
        }
        self.reached()
    }

    /// Counts a refusal from `node`; true once some group can no longer reach its
    /// quorum from the members still to answer.
    pub(crate) fn no(&mut self, node: NodeId) -> bool {
        for g in self.groups.iter_mut().filter(|g| g.members.contains(&node)) {
            g.no += 1;
        }
        self.groups
            .iter()
            .any(|g| g.asked.saturating_sub(g.no) < g.needed)
    }

    /// Whether every group has its quorum.
    pub(crate) fn reached(&self) -> bool {
        self.groups.iter().all(|g| g.yes >= g.needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_replica::FakeReplica;
    use crate::quorum::Target;
    use std::sync::Arc;

    fn set(groups: &[&[u64]], live: &[u64]) -> ReplicaSet {
        let target = |n: u64| Target {
            node: NodeId(n),
            api: Arc::new(FakeReplica::default()),
        };
        ReplicaSet {
            live: live.iter().map(|&n| target(n)).collect(),
            skipped: Vec::new(),
            n: groups[0].len(),
            groups: groups
                .iter()
                .map(|g| g.iter().map(|&n| NodeId(n)).collect())
                .collect(),
            refusals: Arc::default(),
        }
    }

    #[test]
    fn one_group_needs_its_quorum() {
        let mut t = Tally::new(&set(&[&[1, 2, 3]], &[1, 2, 3]), |n| n / 2 + 1);
        assert_eq!(t.unavailable(), None);
        assert!(!t.yes(NodeId(1)));
        assert!(t.yes(NodeId(3)));
        assert_eq!(t.yes_count(), 2);
    }

    #[test]
    fn two_groups_need_a_quorum_in_each() {
        // New replicas 1 2 4, previous 1 2 3: two answers from 3 and 4 are a quorum of
        // neither group; 1 and 2 are a quorum of both.
        let groups: &[&[u64]] = &[&[1, 2, 4], &[1, 2, 3]];
        let mut t = Tally::new(&set(groups, &[1, 2, 3, 4]), |n| n / 2 + 1);
        assert!(!t.yes(NodeId(3)));
        assert!(!t.yes(NodeId(4)));
        assert!(!t.reached());
        assert!(t.yes(NodeId(1)));
        let mut t = Tally::new(&set(groups, &[1, 2, 3, 4]), |n| n / 2 + 1);
        assert!(!t.yes(NodeId(1)));
        assert!(t.yes(NodeId(2)), "1 and 2 are in both groups");
        assert_eq!(t.needed(), 2);
    }

    #[test]
    fn refusals_and_missing_members_are_counted_per_group() {
        let groups: &[&[u64]] = &[&[1, 2, 4], &[1, 2, 3]];
        // Node 4 down: the new group has two live members, still a majority.
        let t = Tally::new(&set(groups, &[1, 2, 3]), |n| n / 2 + 1);
        assert_eq!(t.unavailable(), None);
        // Nodes 2 and 4 down: the new group cannot reach two.
        let t = Tally::new(&set(groups, &[1, 3]), |n| n / 2 + 1);
        assert_eq!(t.unavailable(), Some((2, 1)));
        let mut t = Tally::new(&set(groups, &[1, 2, 3, 4]), |n| n / 2 + 1);
        assert!(!t.no(NodeId(3)), "the previous group still has 1 and 2");
        assert!(t.no(NodeId(1)), "then it has only 2 left of the 2 it needs");
    }
}

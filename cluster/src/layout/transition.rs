//! Layout changes (docs/cluster.md, "Changing the layout"): the changes an operator
//! stages, the next layout they make, and where requests go while data moves.
//!
//! A change takes three layout versions. The first names the new replicas and keeps the
//! previous placement as its [`Transition`]: writes need a quorum in both replica sets,
//! reads ask the previous replicas (the new ones may not hold the data yet), and every
//! new replica copies its incoming partitions from the previous ones. The second, made
//! once every new replica reports its partitions copied, moves reads to the new replicas
//! while writes still need both sets (nodes that have not learned it yet still read the
//! previous replicas). The third, made once every node acknowledged the second, drops
//! the transition, and the previous replicas may delete what they no longer hold.
//! Garage's layout history (ack, sync and sync-ack trackers) is the model.

use super::{Layout, LayoutError, NodeInfo, Transition};
use crate::placement;
use crate::NodeId;
use kv_keyspace::slot::PARTITIONS;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One staged change to the member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LayoutChange {
    /// Adds a node, or sets a member's zone and capacity.
    Assign {
        /// The node, with its zone and capacity.
        node: NodeInfo,
    },
    /// Removes a member: its partitions move to the others (a node leaving).
    Remove {
        /// The member.
        #[serde(with = "super::hex_id")]
        node: NodeId,
    },
    /// Puts a new node in a member's place in every preference list and nothing else:
    /// a dead node's partitions are rebuilt on its replacement from the other replicas.
    Replace {
        /// The member replaced.
        #[serde(with = "super::hex_id")]
        node: NodeId,
        /// Its replacement (not a member yet).
        with: NodeInfo,
    },
}

/// What applying some changes would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutPlan {
    /// The layout the changes make (with its transition when data moves).
    pub next: Layout,
    /// Replica assignments (partition, node) the new replicas must copy.
    pub moved: usize,
    /// Per node of either layout: (node, partitions held before, after).
    pub per_node: Vec<(NodeId, usize, usize)>,
}

impl Layout {
    /// The replicas a read of `partition` asks, in preference order: the previous
    /// layout's while a transition is under way and its reads have not moved, else this
    /// layout's.
    pub fn read_preflist(&self, partition: u16) -> &[NodeId] {
        match &self.transition {
            Some(t) if !t.reads_moved => self.previous_preflist(partition),
            _ => self.preflist(partition),
        }
    }

    /// The previous layout's replicas of `partition` while a transition is under way,
    /// else this layout's.
    pub fn previous_preflist(&self, partition: u16) -> &[NodeId] {
        match &self.transition {
            Some(t) => t
                .partitions
                .get(usize::from(partition))
                .map_or(&[], Vec::as_slice),
            None => self.preflist(partition),
        }
    }

    /// The replica sets a write of `partition` needs a quorum in: this layout's, and
    /// during a transition (reads moved or not) the previous layout's too when it
    /// differs.
    pub fn write_groups(&self, partition: u16) -> Vec<Vec<NodeId>> {
        let new = self.preflist(partition).to_vec();
        let old = self.previous_preflist(partition);
        let same: bool = old.len() == new.len() && old.iter().all(|n| new.contains(n));
        if same {
            vec![new]
        } else {
            vec![new, old.to_vec()]
        }
    }

    /// Every node that holds `partition` or receives it: this layout's replicas, then
    /// the previous layout's that are not among them.
    pub fn holders(&self, partition: u16) -> Vec<NodeId> {
        let mut all = self.preflist(partition).to_vec();
        for &n in self.previous_preflist(partition) {
            if !all.contains(&n) {
                all.push(n);
            }
        }
        all
    }

    /// The partitions `id` must copy before the transition under way may end: those it
    /// is a new replica of. Empty without a transition, and once reads moved (the copy
    /// is what allowed them to move).
    pub fn incoming(&self, id: NodeId) -> Vec<u16> {
        if self.transition.as_ref().is_none_or(|t| t.reads_moved) {
            return Vec::new();
        }
        (0..PARTITIONS)
            .filter(|&p| self.preflist(p).contains(&id) && !self.previous_preflist(p).contains(&id))
            .collect()
    }

    /// The members, then the departing nodes of the transition under way.
    pub fn all_nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes
            .iter()
            .chain(self.transition.iter().flat_map(|t| t.departing.iter()))
    }

    /// The layout `changes` make from this one (version + 1), and what moves. Only
    /// from a layout without a transition: one change at a time.
    pub fn plan(&self, changes: &[LayoutChange]) -> Result<LayoutPlan, LayoutError> {
        let refuse = |why: String| Err(LayoutError::Change(why));
        if let Some(t) = &self.transition {
            return refuse(format!(
                "the change from layout version {} to {} is still under way: apply the next one once it ended (CLUSTER LAYOUT SHOW)",
                t.from_version, self.version
            ));
        }
        if changes.is_empty() {
            return refuse("no layout changes are staged".into());
        }
        let mut members: BTreeMap<NodeId, NodeInfo> =
            self.nodes.iter().map(|n| (n.id, n.clone())).collect();
        let mut partitions = self.partitions.clone();
        let mut rebalance = false;
        let mut replaced = Vec::new();
        for change in changes {
            match change {
                LayoutChange::Assign { node } => {
                    if node.capacity == 0 {
                        return refuse(format!("node {}: capacity must be at least 1", node.id));
                    }
                    rebalance |= members.get(&node.id) != Some(node);
                    members.insert(node.id, node.clone());
                }
                LayoutChange::Remove { node } => {
                    if members.remove(node).is_none() {
                        return refuse(format!("node {node} is not a member of the layout"));
                    }
                    rebalance = true;
                }
                LayoutChange::Replace { node, with } => {
                    if members.contains_key(&with.id) {
                        return refuse(format!(
                            "node {} is a member already: a replacement must be a new node",
                            with.id
                        ));
                    }
                    if members.remove(node).is_none() {
                        return refuse(format!("node {node} is not a member of the layout"));
                    }
                    members.insert(with.id, with.clone());
                    replaced.push(*node);
                    for list in &mut partitions {
                        for id in list.iter_mut().filter(|id| **id == *node) {
                            *id = with.id;
                        }
                    }
                }
            }
        }
        let nodes: Vec<NodeInfo> = members.into_values().collect();
        if rebalance {
            partitions = placement::rebalance(&partitions, &nodes, self.replicas)?;
        }
        let kept: BTreeSet<NodeId> = nodes.iter().map(|n| n.id).collect();
        let transition = (partitions != self.partitions).then(|| Transition {
            from_version: self.version,
            departing: self
                .nodes
                .iter()
                .filter(|n| !kept.contains(&n.id))
                .cloned()
                .collect(),
            partitions: self.partitions.clone(),
            replaced,
            reads_moved: false,
        });
        let next = Layout {
            cluster_id: self.cluster_id.clone(),
            version: self
                .version
                .checked_add(1)
                .ok_or(LayoutError::ZeroVersion)?,
            replicas: self.replicas,
            nodes,
            partitions,
            transition,
        };
        next.validate()?;
        let ids: BTreeSet<NodeId> = self
            .all_nodes()
            .chain(next.all_nodes())
            .map(|n| n.id)
            .collect();
        let per_node = ids
            .into_iter()
            .map(|id| (id, count(&self.partitions, id), count(&next.partitions, id)))
            .collect();
        Ok(LayoutPlan {
            moved: self.moved_assignments(&next),
            next,
            per_node,
        })
    }

    /// The next step of the transition under way (version + 1, the same placement): from
    /// the first version, the one whose reads use the new replicas while writes still
    /// need the previous ones (every new replica copied its partitions); from that one,
    /// the layout without transition (every node acknowledged that reads moved, so no
    /// node reads the previous replicas any more). Moving reads and dropping the
    /// previous replicas from writes in one step let a node that had not learned the new
    /// version read the previous replicas while others wrote to the new ones only: the
    /// simulation found stale reads that way (docs/cluster.md, "Deterministic
    /// simulation").
    pub fn settled(&self) -> Result<Layout, LayoutError> {
        let Some(t) = &self.transition else {
            return Err(LayoutError::Change(format!(
                "layout version {} has no transition to end",
                self.version
            )));
        };
        let mut next = self.clone();
        next.version = self
            .version
            .checked_add(1)
            .ok_or(LayoutError::ZeroVersion)?;
        next.transition = match t.reads_moved {
            false => Some(Transition {
                reads_moved: true,
                ..t.clone()
            }),
            true => None,
        };
        Ok(next)
    }

    /// The transition's invariants: it comes from an older version, its departing nodes
    /// are sorted, distinct, addressed and not members, and it lists 256 partitions of
    /// `replicas` distinct nodes of either kind.
    pub(super) fn validate_transition(&self) -> Result<(), LayoutError> {
        let Some(t) = &self.transition else {
            return Ok(());
        };
        let bad = |why: String| Err(LayoutError::Malformed(format!("transition: {why}")));
        if t.from_version >= self.version {
            return bad(format!(
                "comes from version {}, not older than {}",
                t.from_version, self.version
            ));
        }
        for pair in t.departing.windows(2) {
            if pair[0].id >= pair[1].id {
                return bad(format!("departing node {} is out of order", pair[1].id));
            }
        }
        for n in &t.departing {
            if self.member(n.id).is_some() {
                return bad(format!("node {} is both a member and departing", n.id));
            }
            if n.resp_addr.is_empty() || n.bus_addr.is_empty() {
                return bad(format!("departing node {} has no address", n.id));
            }
        }
        if let Some(id) = t
            .replaced
            .iter()
            .find(|id| !t.departing.iter().any(|n| n.id == **id))
        {
            return bad(format!("replaced node {id} is not departing"));
        }
        if t.partitions.len() != usize::from(PARTITIONS) {
            return Err(LayoutError::PartitionCount(t.partitions.len()));
        }
        for (partition, list) in t.partitions.iter().enumerate() {
            let distinct: BTreeSet<&NodeId> = list.iter().collect();
            let problem = if list.len() != self.replicas || distinct.len() != list.len() {
                Some(format!(
                    "previous placement lists {} distinct of {} replicas",
                    distinct.len(),
                    self.replicas
                ))
            } else {
                list.iter()
                    .find(|&&id| self.node(id).is_none())
                    .map(|id| format!("previous placement names unknown node {id}"))
            };
            if let Some(problem) = problem {
                return Err(LayoutError::BadPartition { partition, problem });
            }
        }
        Ok(())
    }
}

fn count(partitions: &[Vec<NodeId>], id: NodeId) -> usize {
    partitions.iter().filter(|l| l.contains(&id)).count()
}

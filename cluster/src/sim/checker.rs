//! The checks a run must pass, from the history the clients recorded and what every
//! replica holds once the faults are healed and repair has run:
//!
//! 1. No acknowledged write is lost: every replica of a key holds a record at least as
//!    new as the newest acknowledged write of the key, and that record is a write that
//!    was really sent (an acknowledged one with the version it was acknowledged with,
//!    or one whose outcome was unknown), never one refused before sending.
//! 2. Replicas converge: all replicas of every partition have equal Merkle roots and
//!    equal records.
//! 3. A successful QUORUM (or ALL) read never returns a version older than a write
//!    acknowledged at QUORUM (or ALL) before the read began, nor a value no sent write
//!    carried.

use super::history::{Op, OpKind, Outcome};
use crate::layout::Layout;
use crate::quorum::Consistency;
use crate::replica_api::{Hash16, ItemKey};
use crate::{Body, NodeId, Record, Version};
use bytes::Bytes;
use kv_keyspace::slot::key_partition;
use std::collections::BTreeMap;

/// What one node holds at the end of a run.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    /// Merkle root of each of the 256 partitions.
    pub roots: Vec<Hash16>,
    /// Every record it holds.
    pub records: BTreeMap<ItemKey, Record>,
}

/// A broken guarantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A replica holds something older than an acknowledged write (or nothing).
    LostWrite {
        /// The key.
        key: Bytes,
        /// The replica.
        node: NodeId,
        /// The newest acknowledged version.
        acknowledged: Version,
        /// What the replica holds.
        found: Option<Version>,
    },
    /// A replica or a read holds a value that no sent write carried, or with another
    /// version than the one its write was acknowledged with.
    NotWritten {
        /// The key.
        key: Bytes,
        /// Where it was seen (a replica, or the coordinator of a read).
        node: NodeId,
        /// The value.
        value: Bytes,
        /// Its version.
        version: Version,
    },
    /// Replicas of a partition differ after repair.
    Diverged {
        /// The partition.
        partition: u16,
        /// Its replicas.
        nodes: Vec<NodeId>,
    },
    /// A quorum read returned something older than a write acknowledged before it.
    StaleRead {
        /// The key.
        key: Bytes,
        /// The reading client.
        client: usize,
        /// What it read.
        read: Option<Version>,
        /// The newest version acknowledged before the read began.
        acknowledged: Version,
    },
    /// A counter's INCRs were not linearizable: two acknowledged INCRs returned the
    /// same value, one that completed before another began returned a larger value, or
    /// the final value is not between the acknowledged INCRs and those plus the unknown.
    Counter {
        /// The key.
        key: Bytes,
        /// What is wrong.
        what: String,
    },
    /// A multi-key transaction was seen half applied (sim/transfers.rs: the accounts
    /// did not sum to zero), or its locks could not be settled after the heal.
    Transaction {
        /// What was seen.
        what: String,
    },
    /// A layout change had not ended after the heal: the committed layout still has its
    /// transition, or a member does not hold it or did not clean up after it.
    LayoutChangeUnfinished {
        /// The committed layout's version.
        version: u64,
        /// What is left.
        what: String,
    },
    /// After a layout change, a member holds records of a partition the final layout
    /// does not give it: nothing reads them and nothing deletes them again (hint
    /// replay and anti-entropy write only where the partition is held; clean-up
    /// deleted the rest).
    Misplaced {
        /// The member.
        node: NodeId,
        /// The partition.
        partition: u16,
        /// How many records it holds of it.
        records: usize,
    },
    /// A node failed to restart from what its file system kept.
    RestartFailed {
        /// The node.
        node: NodeId,
        /// Why.
        error: String,
    },
}

/// Check 6, for runs that change their layout: the change ended (no transition left,
/// every member of `layout` runs, holds it and cleaned up, `done`).
pub fn check_layout(layout: &Layout, done: &[(NodeId, bool)]) -> Vec<Violation> {
    let unfinished = |what: String| Violation::LayoutChangeUnfinished {
        version: layout.version,
        what,
    };
    let mut violations = Vec::new();
    if let Some(t) = &layout.transition {
        violations.push(unfinished(format!(
            "the change from version {} is under way",
            t.from_version
        )));
    }
    for (node, _) in done.iter().filter(|d| !d.1) {
        violations.push(unfinished(format!(
            "{node:?} is not running, or did not clean up"
        )));
    }
    violations
}

/// Check 7, for runs that change their layout: records members hold of partitions
/// `layout` does not give them, one violation per (node, partition). Nodes that left
/// are not counted (they keep their data until wiped).
pub fn misplaced(layout: &Layout, nodes: &BTreeMap<NodeId, NodeState>) -> Vec<Violation> {
    let mut found = Vec::new();
    for (&node, state) in nodes.iter().filter(|(n, _)| layout.member(**n).is_some()) {
        let mut per_partition: BTreeMap<u16, usize> = BTreeMap::new();
        for key in state.records.keys() {
            let partition = key_partition(&key.key);
            if !layout.preflist(partition).contains(&node) {
                *per_partition.entry(partition).or_default() += 1;
            }
        }
        found.extend(
            per_partition
                .into_iter()
                .map(|(partition, records)| Violation::Misplaced {
                    node,
                    partition,
                    records,
                }),
        );
    }
    found
}

/// Runs checks 1-3.
pub fn check(
    history: &[Op],
    layout: &Layout,
    keys: &[Bytes],
    nodes: &BTreeMap<NodeId, NodeState>,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    let writes = WritesByValue::new(history);
    check_convergence(layout, nodes, &mut violations);
    for key in keys {
        check_replicas_of(key, history, &writes, layout, nodes, &mut violations);
    }
    check_reads(history, &writes, &mut violations);
    violations
}

/// The writes of a history, by their (unique) value.
struct WritesByValue<'a>(BTreeMap<&'a Bytes, &'a Op>);

impl<'a> WritesByValue<'a> {
    fn new(history: &'a [Op]) -> Self {
        WritesByValue(
            history
                .iter()
                .filter_map(|op| match &op.kind {
                    OpKind::Put(v) => Some((v, op)),
                    _ => None,
                })
                .collect(),
        )
    }

    /// Whether `record` of `key` can be what a sent write left: a tombstone (deletes
    /// carry no value to tell them apart; their versions are checked by order), or the
    /// value of a write that was sent. An acknowledged write's value carries the
    /// version it was acknowledged with, or the version of an earlier attempt of the
    /// same write: a round that met a Stale answer may have been applied on other
    /// replicas before the coordinator retried with a newer version.
    fn was_sent(&self, key: &Bytes, record: &Record) -> bool {
        let Body::Value { payload, .. } = &record.body else {
            return true;
        };
        match self.0.get(payload) {
            Some(op) if op.key != *key => false,
            Some(op) => match &op.outcome {
                Outcome::Written(v) => record.version <= *v && record.version.node == v.node,
                Outcome::Unknown(_) => true,
                _ => false,
            },
            None => false,
        }
    }
}

fn payload_of(record: &Record) -> Bytes {
    match &record.body {
        Body::Value { payload, .. } => payload.clone(),
        _ => Bytes::new(),
    }
}

fn check_convergence(
    layout: &Layout,
    nodes: &BTreeMap<NodeId, NodeState>,
    violations: &mut Vec<Violation>,
) {
    for (partition, preflist) in layout.partitions.iter().enumerate() {
        let partition = partition as u16;
        let states: Vec<(Option<&Hash16>, BTreeMap<&ItemKey, &Record>)> = preflist
            .iter()
            .map(|n| {
                let state = nodes.get(n);
                let root = state.and_then(|s| s.roots.get(partition as usize));
                let records = state
                    .map(|s| {
                        s.records
                            .iter()
                            .filter(|(k, _)| key_partition(&k.key) == partition)
                            .collect()
                    })
                    .unwrap_or_default();
                (root, records)
            })
            .collect();
        if states.windows(2).any(|w| w[0] != w[1]) {
            violations.push(Violation::Diverged {
                partition,
                nodes: preflist.clone(),
            });
        }
    }
}

fn check_replicas_of(
    key: &Bytes,
    history: &[Op],
    writes: &WritesByValue<'_>,
    layout: &Layout,
    nodes: &BTreeMap<NodeId, NodeState>,
    violations: &mut Vec<Violation>,
) {
    let acknowledged = history
        .iter()
        .filter(|op| op.key == *key)
        .filter_map(Op::acknowledged)
        .max();
    let item = ItemKey {
        db: 0,
        key: key.clone(),
    };
    for &node in layout.key_preflist(key) {
        let held = nodes.get(&node).and_then(|s| s.records.get(&item));
        if let Some(acked) = acknowledged {
            if held.is_none_or(|r| r.version < acked) {
                violations.push(Violation::LostWrite {
                    key: key.clone(),
                    node,
                    acknowledged: acked,
                    found: held.map(|r| r.version),
                });
            }
        }
        if let Some(record) = held.filter(|r| !writes.was_sent(key, r)) {
            violations.push(Violation::NotWritten {
                key: key.clone(),
                node,
                value: payload_of(record),
                version: record.version,
            });
        }
    }
}

fn is_strong(c: Consistency) -> bool {
    matches!(c, Consistency::Quorum | Consistency::All)
}

fn check_reads(history: &[Op], writes: &WritesByValue<'_>, violations: &mut Vec<Violation>) {
    for read in history.iter().filter(|op| is_strong(op.consistency)) {
        let Outcome::Read(record) = &read.outcome else {
            continue;
        };
        let before = history
            .iter()
            .filter(|w| w.key == read.key && is_strong(w.consistency) && w.completed < read.invoked)
            .filter_map(Op::acknowledged)
            .max();
        let version = record.as_ref().map(|r| r.version);
        if let Some(acked) = before.filter(|&a| version.is_none_or(|v| v < a)) {
            violations.push(Violation::StaleRead {
                key: read.key.clone(),
                client: read.client,
                read: version,
                acknowledged: acked,
            });
        }
        if let Some(r) = record.as_ref().filter(|r| !writes.was_sent(&read.key, r)) {
            violations.push(Violation::NotWritten {
                key: read.key.clone(),
                node: read.node,
                value: payload_of(r),
                version: r.version,
            });
        }
    }
}

/// Check 4, for the counter keys (INCR through consensus): every acknowledged INCR
/// returned its own value, values grow in real time (an INCR that completed before
/// another began returned less), and every replica ends with a value at least the
/// number of acknowledged INCRs and at most that plus the unknown ones. SERIAL reads
/// are linearizable with them: a read sees every INCR that completed before it began,
/// an INCR begun after a read completed returns more than it saw, and a read begun
/// after another completed sees at least as much.
pub fn check_counters(
    history: &[Op],
    layout: &Layout,
    counters: &[Bytes],
    nodes: &BTreeMap<NodeId, NodeState>,
) -> Vec<Violation> {
    counter_violations(counters, |key, bad| {
        let incrs: Vec<&Op> = history
            .iter()
            .filter(|op| op.key == *key && op.kind == OpKind::Incr)
            .collect();
        let acked: Vec<(&Op, u64)> = incrs
            .iter()
            .filter_map(|op| match op.outcome {
                Outcome::Counted(v) => Some((*op, v)),
                _ => None,
            })
            .collect();
        let unknown = incrs
            .iter()
            .filter(|op| matches!(op.outcome, Outcome::Unknown(_)))
            .count() as u64;
        let mut values: Vec<u64> = acked.iter().map(|(_, v)| *v).collect();
        values.sort_unstable();
        if let Some(w) = values.windows(2).find(|w| w[0] == w[1]) {
            bad(format!("two acknowledged INCRs returned {}", w[0]));
        }
        let reads: Vec<(&Op, u64)> = history
            .iter()
            .filter(|op| op.key == *key)
            .filter_map(|op| match op.outcome {
                Outcome::CounterRead(v) => Some((op, v)),
                _ => None,
            })
            .collect();
        // Whatever an acknowledged INCR returned or a SERIAL read saw, an INCR begun
        // after it returns more, and a read begun after it sees at least as much.
        for (o, v) in acked.iter().chain(&reads) {
            if let Some((b, vb)) = acked
                .iter()
                .find(|(b, vb)| o.completed < b.invoked && vb <= v)
            {
                bad(format!(
                    "client {} saw {v}, and client {} got {vb} in an INCR begun after",
                    o.client, b.client
                ));
            }
            if let Some((r, seen)) = reads
                .iter()
                .find(|(r, seen)| o.completed < r.invoked && seen < v)
            {
                bad(format!(
                    "client {} saw {v}, and client {} read {seen} after",
                    o.client, r.client
                ));
            }
        }
        let count = acked.len() as u64;
        let replicas = replica_counters(layout, nodes, key);
        counts_between(&replicas, count, unknown, "acknowledged INCRs", bad);
    })
}

/// Reports each replica whose counter is below `count` (what was acknowledged) or
/// above `count + unknown` (plus what may have landed).
pub(super) fn counts_between(
    replicas: &[(NodeId, u64)],
    count: u64,
    unknown: u64,
    what: &str,
    bad: &mut dyn FnMut(String),
) {
    for (node, value) in replicas {
        if *value < count || *value > count + unknown {
            bad(format!(
                "replica {node:?} holds {value} after {count} {what} and {unknown} unknown"
            ));
        }
    }
}

/// Runs `check` on each counter key; what it reports wrong (through its second
/// argument) becomes a [`Violation::Counter`] of that key.
pub fn counter_violations(
    keys: &[Bytes],
    mut check: impl FnMut(&Bytes, &mut dyn FnMut(String)),
) -> Vec<Violation> {
    let mut violations = Vec::new();
    for key in keys {
        check(key, &mut |what| {
            violations.push(Violation::Counter {
                key: key.clone(),
                what,
            })
        });
    }
    violations
}

/// The counter value each replica of `key` holds at the end (absent counts as 0).
pub fn replica_counters(
    layout: &Layout,
    nodes: &BTreeMap<NodeId, NodeState>,
    key: &Bytes,
) -> Vec<(NodeId, u64)> {
    let item = ItemKey {
        db: 0,
        key: key.clone(),
    };
    layout
        .key_preflist(key)
        .iter()
        .map(|&node| {
            let held = nodes.get(&node).and_then(|s| s.records.get(&item));
            (node, held.map_or(0, super::clients::counter_value))
        })
        .collect()
}

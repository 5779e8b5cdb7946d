//! Layout administration (docs/cluster.md, "Changing the layout"): changes are staged in
//! the cluster metadata (so every node shows the same staged changes; layout_staging.rs),
//! reviewed with PLAN, and applied with the version PLAN showed, as Garage's `layout
//! assign / show / apply --version` and Riak's `cluster join / plan / commit` do.
//! Applying commits the next layout through consensus on one register, so two operators
//! applying at once cannot make two different layouts with the same version.

use super::ClusterNode;
use crate::config::Consistency;
use crate::coordinator::Change;
use crate::layout::{Layout, LayoutChange, LayoutPlan, NodeInfo};
use crate::partition_size::{moves, totals, PartitionMove};
use crate::quorum::ClusterError;
use crate::replica_api::{ItemKey, Liveness};
use crate::ring::{LayoutRequest, RingError};
use crate::{Body, NodeId, Record};
use bytes::Bytes;
use kv_keyspace::ValueType;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The consensus register of committed layouts: a key in a namespace no client
/// database uses (databases are numbered from 0 up to the configured count), so no
/// client command sees it; anti-entropy replicates it like any key.
pub const LAYOUT_REGISTER_DB: u32 = u32::MAX;
const LAYOUT_REGISTER_KEY: &[u8] = b"kvd:layout";

fn register_key() -> ItemKey {
    ItemKey {
        db: LAYOUT_REGISTER_DB,
        key: Bytes::from_static(LAYOUT_REGISTER_KEY),
    }
}

/// Consensus rounds one commit runs before it reports an unknown outcome. A round whose
/// value some replicas accepted before a competing commit won the register ends
/// "TIMEOUT ... may still be applied" (CASPaxos cannot tell whether a later value derives
/// from it); the register's rule makes running again safe (`next` is written over itself)
/// and settles it: the next round finds `next` (committed) or another layout (refused).
/// Two operators applying at once hit this (tests/tests/cluster_concurrent_apply.rs).
const REGISTER_ATTEMPTS: usize = 3;

/// What the register's consensus round decided.
enum Verdict {
    Committed,
    /// Another layout holds the register at another version.
    Conflict(Box<Layout>),
    Damaged(String),
}

/// The register's rule, given the layout it holds: `next` (version v) is written only
/// over the layout it was made from (version v - 1) or over itself (the same APPLY
/// retried, or an empty register). Anything else is another change's layout, which
/// stays: of two operators applying different changes at once, the consensus round
/// that runs second sees the first one's layout and is refused, so no two layouts ever
/// share a version.
fn decide(held: Option<Layout>, next: &Layout) -> Verdict {
    match held {
        Some(held) if held.version != next.version.saturating_sub(1) && held != *next => {
            Verdict::Conflict(Box::new(held))
        }
        _ => Verdict::Committed,
    }
}

fn other(text: String) -> RingError {
    RingError::Other(text)
}

impl ClusterNode {
    /// Runs one layout administration request.
    pub(super) async fn layout_admin(&self, request: LayoutRequest) -> Result<String, RingError> {
        let layout = self.layout.get().ok_or(RingError::NoLayout {
            expected: self.config.expect,
        })?;
        match request {
            LayoutRequest::Show => Ok(self.show_layout(&layout)),
            LayoutRequest::Assign {
                node,
                zone,
                capacity,
            } => {
                let mut info = self.resolve(&layout, &node)?;
                if let Some(zone) = zone {
                    info.zone = zone;
                }
                if let Some(capacity) = capacity {
                    info.capacity = capacity;
                }
                self.stage(LayoutChange::Assign { node: info }).await
            }
            LayoutRequest::Remove { node } => {
                let node = self.resolve(&layout, &node)?.id;
                self.stage(LayoutChange::Remove { node }).await
            }
            LayoutRequest::Replace { node, with } => {
                let node = self.resolve(&layout, &node)?.id;
                let with = self.resolve(&layout, &with)?;
                self.stage(LayoutChange::Replace { node, with }).await
            }
            LayoutRequest::Revert => {
                let entries: Vec<_> = self.staged_entries().into_iter().map(|(e, _)| e).collect();
                self.withdraw(&entries).await?;
                Ok(format!("staged_changes:{}\n", self.staged().len()))
            }
            LayoutRequest::Status => Ok(self.layout_status(&layout)),
            LayoutRequest::Plan => {
                let plan = layout
                    .plan(&self.staged())
                    .map_err(|e| other(format!("ERR {e}")))?;
                let gaining: Vec<u16> = moves(&layout, &plan.next, &BTreeMap::new())
                    .iter()
                    .map(|m| m.partition)
                    .collect();
                let sizes = self.partition_sizes(&layout, &gaining).await;
                Ok(show_plan(&plan, &moves(&layout, &plan.next, &sizes)))
            }
            LayoutRequest::Apply { version } => {
                let (entries, staged): (Vec<_>, Vec<_>) = self.staged_entries().into_iter().unzip();
                let plan = layout
                    .plan(&staged)
                    .map_err(|e| other(format!("ERR {e}")))?;
                if plan.next.version != version {
                    return Err(other(format!(
                        "ERR the staged changes make layout version {}, not {version}: review CLUSTER LAYOUT PLAN again",
                        plan.next.version
                    )));
                }
                self.commit_layout(plan.next.clone()).await?;
                self.withdraw(&entries).await?;
                Ok(format!(
                    "layout_version:{}\nmoved_assignments:{}\ntransition:{}\n",
                    plan.next.version,
                    plan.moved,
                    if plan.next.transition.is_some() {
                        "started"
                    } else {
                        "none"
                    }
                ))
            }
        }
    }

    /// A node by id or bus address: a member (or departing node), a node met by hello,
    /// or one gossip reports.
    fn resolve(&self, layout: &Layout, name: &str) -> Result<NodeInfo, RingError> {
        let id = NodeId::parse(name);
        let matches = |n: &NodeInfo| Some(n.id) == id || n.bus_addr == name;
        if let Some(n) = layout.all_nodes().find(|n| matches(n)) {
            return Ok(n.clone());
        }
        if let Some(n) = self.met.lock().values().find(|n| matches(n)) {
            return Ok(n.clone());
        }
        let gossiped = self.membership.lock().as_ref().map(|m| m.members());
        if let Some(m) = gossiped
            .unwrap_or_default()
            .into_iter()
            .find(|m| Some(m.node) == id || m.bus_addr == name)
        {
            return Ok(NodeInfo {
                id: m.node,
                resp_addr: m.resp_addr,
                bus_addr: m.bus_addr,
                zone: String::new(),
                capacity: 1,
            });
        }
        Err(other(format!(
            "ERR unknown node {name}: start it with --cluster-seeds naming a member, then give its id (CLUSTER LAYOUT SHOW lists the nodes met) or its bus address"
        )))
    }

    /// Commits `next` (version = the held version + 1) through consensus on the layout
    /// register, then installs it here and pushes it to every node it names (the others
    /// learn it by gossip). A register holding another layout of that version or a
    /// newer one refuses the commit; this node then adopts what the register holds.
    pub(super) async fn commit_layout(&self, next: Layout) -> Result<(), RingError> {
        let json = Bytes::from(next.to_json());
        let mut verdict = None;
        let mut change = |state: Option<&Record>| {
            let held = match state.map(|r| &r.body) {
                Some(Body::Value { payload, .. }) => match Layout::from_json(payload) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        verdict = Some(Verdict::Damaged(e.to_string()));
                        return Change::Keep;
                    }
                },
                _ => None,
            };
            let decided = decide(held, &next);
            let write = matches!(decided, Verdict::Committed);
            verdict = Some(decided);
            if !write {
                return Change::Keep;
            }
            Change::Write {
                body: Body::Value {
                    ty: ValueType::String,
                    payload: json.clone(),
                },
                expire_at: None,
                request: None,
            }
        };
        let mut attempts = 1;
        loop {
            match self
                .coordinator
                .consensus(register_key(), Consistency::Quorum, &mut change)
                .await
            {
                Err(ClusterError::Timeout { .. }) if attempts < REGISTER_ATTEMPTS => {
                    tracing::info!(
                        version = next.version,
                        attempts,
                        "the layout register's round ended unknown; running it again"
                    );
                    attempts += 1;
                }
                ended => {
                    ended.map_err(|e| self.ring_error("write", e))?;
                    break;
                }
            }
        }
        match verdict {
            Some(Verdict::Committed) => {
                self.adopt(next.clone())
                    .await
                    .map_err(|e| other(format!("ERR {e}")))?;
                self.push_layout(&next).await;
                tracing::info!(
                    version = next.version,
                    transition = next.transition.is_some(),
                    "layout committed"
                );
                Ok(())
            }
            Some(Verdict::Conflict(held)) => {
                let version = held.version;
                if let Err(e) = self.adopt(*held).await {
                    tracing::debug!(error = %e, "the registered layout was not adopted");
                }
                Err(other(format!(
                    "ERR layout version {version} was committed by another change: review CLUSTER LAYOUT PLAN again"
                )))
            }
            Some(Verdict::Damaged(e)) => Err(other(format!(
                "ERR the layout register holds a damaged layout: {e}"
            ))),
            None => Err(other("ERR the layout register was not read".into())),
        }
    }

    /// Sends `layout` to every node it names; best effort (gossip spreads it anyway).
    async fn push_layout(&self, layout: &Layout) {
        let blob = super::bus::blob(layout);
        for n in layout.all_nodes().filter(|n| n.id != self.me.id) {
            if let Some(peer) = self.peers.peer(n.id) {
                if let Err(e) = peer.push_layout(blob.clone()).await {
                    tracing::debug!(peer = %n.id, error = %e, "layout push failed; the peer will fetch it");
                }
            }
        }
    }

    fn show_layout(&self, layout: &Layout) -> String {
        let mut out = String::new();
        let members = self
            .membership
            .lock()
            .as_ref()
            .map(|m| m.members())
            .unwrap_or_default();
        let progress = self.progress.lock().clone();
        let _ = writeln!(out, "layout_version:{}", layout.version);
        let _ = writeln!(out, "cluster_id:{}", layout.cluster_id);
        let _ = writeln!(out, "replicas:{}", layout.replicas);
        match &layout.transition {
            Some(t) => {
                let moving = (0..kv_keyspace::slot::PARTITIONS)
                    .filter(|&p| layout.write_groups(p).len() > 1)
                    .count();
                let _ = writeln!(
                    out,
                    "transition:from {} to {}",
                    t.from_version, layout.version
                );
                let _ = writeln!(out, "partitions_moving:{moving}");
            }
            None => {
                let _ = writeln!(out, "transition:none");
            }
        }
        for n in layout.all_nodes() {
            let (acked, synced) = if n.id == self.me.id {
                (progress.acked, progress.synced)
            } else {
                members
                    .iter()
                    .find(|m| m.node == n.id)
                    .map_or((0, 0), |m| (m.layout_acked, m.layout_synced))
            };
            let role = if layout.member(n.id).is_some() {
                "member"
            } else {
                "departing"
            };
            let _ = writeln!(
                out,
                "node:{} {} {} zone={} capacity={} partitions={} incoming={} state={} acked={} synced={}",
                n.id,
                role,
                n.resp_addr,
                n.zone,
                n.capacity,
                layout.preflist_count(n.id),
                layout.incoming(n.id).len(),
                self.live.state(n.id).name(),
                acked,
                synced
            );
        }
        let candidates: Vec<NodeInfo> = self
            .met
            .lock()
            .values()
            .filter(|n| layout.node(n.id).is_none())
            .cloned()
            .collect();
        for n in candidates {
            let _ = writeln!(out, "candidate:{} {} bus={}", n.id, n.resp_addr, n.bus_addr);
        }
        let staged = self.staged();
        let _ = writeln!(out, "staged_changes:{}", staged.len());
        for c in staged {
            let line = match c {
                LayoutChange::Assign { node } => format!(
                    "assign {} zone={} capacity={}",
                    node.id, node.zone, node.capacity
                ),
                LayoutChange::Remove { node } => format!("remove {node}"),
                LayoutChange::Replace { node, with } => format!("replace {node} with {}", with.id),
            };
            let _ = writeln!(out, "staged:{line}");
        }
        out
    }
}

/// The plan as CLUSTER LAYOUT PLAN replies: the version, what moves in replica
/// assignments and in bytes (per node received, per partition), and how to apply it.
fn show_plan(plan: &LayoutPlan, moving: &[PartitionMove]) -> String {
    let mut out = String::new();
    let t = totals(moving);
    let _ = writeln!(out, "next_version:{}", plan.next.version);
    let _ = writeln!(out, "moved_assignments:{}", plan.moved);
    let _ = writeln!(out, "bytes_to_move:{}", t.bytes);
    let _ = writeln!(out, "keys_to_move:{}", t.keys);
    let _ = writeln!(out, "partitions_unmeasured:{}", t.unknown);
    for (id, before, after) in &plan.per_node {
        let receives: u64 = moving
            .iter()
            .filter(|m| m.to.contains(id))
            .filter_map(|m| m.size.map(|s| s.bytes))
            .sum();
        let _ = writeln!(
            out,
            "node:{id} partitions {before} -> {after} receives_bytes={receives}"
        );
    }
    for m in moving {
        let to: Vec<String> = m.to.iter().map(|n| n.to_string()).collect();
        let (keys, bytes) = m.size.map_or(("?".to_string(), "?".to_string()), |s| {
            (s.keys.to_string(), s.bytes.to_string())
        });
        let _ = writeln!(
            out,
            "partition:{} to={} keys={keys} bytes={bytes}",
            m.partition,
            to.join(",")
        );
    }
    let _ = writeln!(out, "apply_with:CLUSTER LAYOUT APPLY {}", plan.next.version);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::new_cluster_id;
    use crate::partition_size::tests::node;

    /// Version 1 of three nodes, and two different version-2 layouts made from it (two
    /// operators' changes).
    fn base_and_two_nexts() -> (Layout, Layout, Layout) {
        let base = Layout::initial(new_cluster_id(), vec![node(1), node(2), node(3)], 3)
            .expect("a layout of three nodes");
        let mut first = base.clone();
        first.version = 2;
        first.nodes[0].capacity = 2;
        let mut second = base.clone();
        second.version = 2;
        second.nodes[0].zone = "rack-b".into();
        assert_ne!(first, second);
        (base, first, second)
    }

    fn committed(v: &Verdict) -> bool {
        matches!(v, Verdict::Committed)
    }

    #[test]
    fn two_changes_applied_at_once_cannot_share_a_version() {
        let (base, first, second) = base_and_two_nexts();
        // Each is written over the layout it was made from...
        assert!(committed(&decide(Some(base.clone()), &first)));
        assert!(committed(&decide(Some(base), &second)));
        // ...but the round that runs second sees the first one's layout: refused, and
        // told which layout holds the version.
        match decide(Some(first.clone()), &second) {
            Verdict::Conflict(held) => assert_eq!(*held, first),
            _ => panic!("a second layout with version 2 was written"),
        }
    }

    #[test]
    fn the_same_apply_retried_commits_and_an_older_change_is_refused() {
        let (_, first, _) = base_and_two_nexts();
        assert!(committed(&decide(Some(first.clone()), &first)), "a retry");
        assert!(committed(&decide(None, &first)), "an empty register");
        let mut third = first.clone();
        third.version = 3;
        assert!(committed(&decide(Some(first.clone()), &third)));
        // A change made from version 1 arriving after version 3 was committed.
        assert!(!committed(&decide(Some(third), &first)));
    }
}

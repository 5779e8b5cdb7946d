//! Staged layout changes (docs/cluster.md, "Changing the layout"): one cluster metadata
//! entry per node a change is about, `layout/staged/<node id>` -> the change as JSON (an
//! empty value: nothing staged for it). Metadata entries merge last-writer-wins, so one
//! entry holding the whole list lost a change whenever two operators staged at once:
//! each wrote the list it had read plus its own change, and the newer list replaced the
//! other everywhere, while both operators had been told their change was staged and the
//! loser's APPLY then committed the other change (tests/tests/cluster_concurrent_apply.rs
//! found it). One entry per node keeps changes about different nodes side by side, as
//! Garage's staged roles are a map per node; a second change about the same node replaces
//! the first, as staging always did.

use super::ClusterNode;
use crate::layout::LayoutChange;
use crate::metadata::MetaEntry;
use crate::ring::RingError;
use crate::NodeId;
use bytes::Bytes;

/// Name prefix of the staged-change entries.
const STAGED_PREFIX: &str = "layout/staged/";

/// The node a change is about: it names its entry.
fn subject(change: &LayoutChange) -> NodeId {
    match change {
        LayoutChange::Assign { node } => node.id,
        LayoutChange::Remove { node } | LayoutChange::Replace { node, .. } => *node,
    }
}

/// The staged changes among `entries`, in the order they were staged (by entry version),
/// each with the entry that holds it. Withdrawn (empty) and unreadable entries are none.
fn staged_in(entries: Vec<MetaEntry>) -> Vec<(MetaEntry, LayoutChange)> {
    let mut staged: Vec<(MetaEntry, LayoutChange)> = entries
        .into_iter()
        .filter(|e| e.name.starts_with(STAGED_PREFIX) && !e.value.is_empty())
        .filter_map(|e| {
            let change = serde_json::from_slice(&e.value).ok()?;
            Some((e, change))
        })
        .collect();
    staged.sort_by_key(|(e, _)| e.version);
    staged
}

impl ClusterNode {
    /// The staged changes, in the order they were staged.
    pub(super) fn staged(&self) -> Vec<LayoutChange> {
        self.staged_entries().into_iter().map(|(_, c)| c).collect()
    }

    /// The staged changes with their entries (what [`ClusterNode::withdraw`] takes).
    pub(super) fn staged_entries(&self) -> Vec<(MetaEntry, LayoutChange)> {
        staged_in(self.metadata.entries())
    }

    /// Stages `change`, replacing a staged change about the same node; replies with the
    /// number staged.
    pub(super) async fn stage(&self, change: LayoutChange) -> Result<String, RingError> {
        let name = format!("{STAGED_PREFIX}{}", subject(&change));
        let json = serde_json::to_vec(&change).map_err(|e| RingError::Other(format!("ERR {e}")))?;
        self.publish(vec![(name, Bytes::from(json))]).await?;
        Ok(format!("staged_changes:{}\n", self.staged().len()))
    }

    /// Withdraws the staged changes of `entries` (APPLY: the ones it applied; REVERT:
    /// all). An entry staged again since it was read is newer and stays: a change staged
    /// while another was applied waits for the next APPLY.
    pub(super) async fn withdraw(&self, entries: &[MetaEntry]) -> Result<(), RingError> {
        let still_held: Vec<(String, Bytes)> = entries
            .iter()
            .filter(|e| {
                self.metadata
                    .get(&e.name)
                    .is_some_and(|h| h.version == e.version)
            })
            .map(|e| (e.name.clone(), Bytes::new()))
            .collect();
        if still_held.is_empty() {
            return Ok(());
        }
        self.publish(still_held).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition_size::tests::node;
    use crate::Version;

    fn entry(change: Option<&LayoutChange>, node_id: u64, ts: u64) -> MetaEntry {
        MetaEntry {
            name: format!("{STAGED_PREFIX}{}", NodeId(node_id)),
            version: Version {
                ts,
                node: NodeId(99),
            },
            value: change.map_or_else(Bytes::new, |c| {
                Bytes::from(serde_json::to_vec(c).expect("json"))
            }),
        }
    }

    #[test]
    fn changes_about_different_nodes_staged_at_once_are_all_kept_in_staging_order() {
        let join = LayoutChange::Assign { node: node(4) };
        let leave = LayoutChange::Remove { node: NodeId(2) };
        // Two operators' entries, merged in either order (names differ: both stay).
        let staged = staged_in(vec![entry(Some(&leave), 2, 20), entry(Some(&join), 4, 10)]);
        let changes: Vec<LayoutChange> = staged.into_iter().map(|(_, c)| c).collect();
        assert_eq!(changes, vec![join, leave]);
    }

    #[test]
    fn withdrawn_unreadable_and_other_entries_are_not_staged() {
        let join = LayoutChange::Assign { node: node(4) };
        let mut unreadable = entry(None, 5, 3);
        unreadable.value = Bytes::from_static(b"not json");
        let mut other = entry(Some(&join), 6, 4);
        other.name = "config/maxmemory".into();
        let staged = staged_in(vec![entry(None, 4, 2), unreadable, other]);
        assert!(staged.is_empty(), "{staged:?}");
    }
}

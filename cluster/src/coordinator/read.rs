//! The read path: ask R live replicas in preference order (the next ones if some fail),
//! merge their answers last-writer-wins, move the clock past the newest version, repair
//! the replicas that answered something older, then reply.

use super::layout_retry::LayoutRetry;
use super::{Coordinator, ReplicaSet};
use crate::quorum::{ask_in_order, ClusterError, Consistency};
use crate::read_repair::{needs_repair, repair_replicas};
use crate::replica_api::{ItemKey, ReplicaError};
use crate::{NodeId, Record};
use std::sync::Arc;

impl Coordinator {
    /// The newest record of `key` among the replicas the consistency level asks,
    /// tombstones and expired values included (the caller decides what is live).
    pub async fn get(
        &self,
        key: ItemKey,
        consistency: Consistency,
    ) -> Result<Option<Record>, ClusterError> {
        let mut layout_retry = LayoutRetry::default();
        loop {
            let set = self.key_replicas(&key.key);
            let read = self.read_from(&set, &key, consistency).await;
            // A replica on a newer layout refused: read again where it places the key.
            if !layout_retry.after(self, &set).await {
                return read;
            }
        }
    }

    async fn read_from(
        &self,
        set: &ReplicaSet,
        key: &ItemKey,
        consistency: Consistency,
    ) -> Result<Option<Record>, ClusterError> {
        let inner = &self.inner;
        let needed = consistency.required(set.n, inner.config.read_quorum);
        let answers = ask_in_order(&set.live, needed, inner.config.request_timeout, |api| {
            let key = key.clone();
            // The target asked, for noting a stale-layout refusal.
            let node = set.live.iter().find(|t| Arc::ptr_eq(&t.api, &api));
            let (node, refusals) = (node.map(|t| t.node), set.refusals.clone());
            async move {
                let mut records = api.read(vec![key]).await.inspect_err(|e| {
                    if let Some(node) = node {
                        refusals.note(node, e);
                    }
                })?;
                match (records.pop(), records.is_empty()) {
                    (Some(record), true) => Ok(record),
                    _ => Err(ReplicaError::Failed("read answered the wrong count".into())),
                }
            }
        })
        .await?;
        Ok(self.newest_of(set, key, answers).await)
    }

    /// The newest of the records `answers` hold for `key` (flushed ones not counted),
    /// after moving the clock past it and repairing the replicas that answered
    /// something older.
    pub(super) async fn newest_of(
        &self,
        set: &ReplicaSet,
        key: &ItemKey,
        answers: Vec<(NodeId, Option<Record>)>,
    ) -> Option<Record> {
        let (answers, newest) = self.merge_answers(key, answers);
        // As `get_many` does: a read whose replicas agree (almost every one) sets up
        // no repair at all.
        if let Some(newest) = newest.as_ref().filter(|n| needs_repair(&answers, n)) {
            repair_replicas(self, &set.live, key, &answers, newest).await;
        }
        newest
    }

    /// The answers as a reader may see them (a replica that has not learned of a flush
    /// yet still answers flushed records: those count as none) and the newest of them,
    /// with the clock moved past it. The repair [`Coordinator::newest_of`] adds is
    /// needed only if [`needs_repair`](crate::read_repair::needs_repair) says so.
    pub(super) fn merge_answers(
        &self,
        key: &ItemKey,
        answers: Vec<(NodeId, Option<Record>)>,
    ) -> (Vec<(NodeId, Option<Record>)>, Option<Record>) {
        let inner = &self.inner;
        let answers: Vec<_> = answers
            .into_iter()
            .map(|(node, r)| (node, inner.floors.visible(key.db, r)))
            .collect();
        let newest = answers
            .iter()
            .filter_map(|(_, r)| r.clone())
            .reduce(Record::merge);
        if let Some(newest) = &newest {
            inner.clock.observe(newest.version);
        }
        (answers, newest)
    }
}

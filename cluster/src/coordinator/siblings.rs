//! The write path of a siblings database (docs/consistency.md, "Siblings"). A dot's
//! actor must be a replica holding the key (crate::dvv), so the write goes first to ONE
//! replica (this node when it is one and up), which gives it a dot and stores the new
//! state; that whole state then goes to the other replicas, which join it, exactly as
//! Riak's coordinating vnode does. The replica that made the dot counts toward W, hints
//! and read repair carry states like any record, and a W of one (consistency ONE) is
//! what lets both sides of a partition keep writing.

use super::round::{write_round, RoundEnd};
use super::tally::Tally;
use super::write::hint_skipped;
use super::{Coordinator, ReplicaSet};
use crate::dvv::{SiblingsWrite, WARN_SIBLINGS};
use crate::quorum::{ClusterError, Consistency};
use crate::record_size::check_record_bytes;
use crate::replica_api::{ItemKey, ReplicaError, WriteItem, WriteOutcome};
use crate::replica_store::TOO_MANY_SIBLINGS;
use crate::{Body, NodeId, Record, Version};
use std::sync::atomic::Ordering;
use tokio::time::Instant;

impl Coordinator {
    /// Writes a client's siblings write to `key` and returns the version of the state
    /// the first replica stored, once the consistency level's acknowledgements arrived.
    pub async fn siblings_put(
        &self,
        key: ItemKey,
        write: SiblingsWrite,
        consistency: Consistency,
    ) -> Result<Version, ClusterError> {
        let inner = &self.inner;
        check_record_bytes(key.key.len() + write.value.as_ref().map_or(0, |v| v.len()))?;
        let set = self.key_write_set(&key.key);
        let quorum = |n| consistency.required(n, inner.config.write_quorum);
        let mut tally = Tally::new(&set, quorum);
        if let Some((needed, alive)) = tally.unavailable() {
            return Err(ClusterError::Unavailable { needed, alive });
        }
        self.observe_flush_floor(key.db);
        let version = inner.clock.next().map_err(ClusterError::Clock)?;
        let deadline = Instant::now() + inner.config.request_timeout;
        let item = WriteItem {
            key: key.clone(),
            record: Record {
                version,
                expire_at: None,
                body: Body::SiblingsWrite(write),
                requests: Vec::new(),
                txn: Default::default(),
            },
        };
        let (actor, state) = self
            .dot_at_a_replica(&set, item, deadline, tally.needed())
            .await?;
        if let Body::Siblings(s) = &state.body {
            if s.len() > WARN_SIBLINGS {
                inner
                    .counters
                    .siblings_warnings
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(db = key.db, key = %key.key.escape_ascii(), siblings = s.len(),
                    "a key keeps many siblings: resolve them with SIBGET and a write with the token");
            }
        }
        let copy = WriteItem { key, record: state };
        let others = ReplicaSet {
            live: set
                .live
                .iter()
                .filter(|t| t.node != actor)
                .cloned()
                .collect(),
            skipped: set.skipped.clone(),
            n: set.n,
            groups: set.groups.clone(),
            refusals: set.refusals.clone(),
        };
        let reached = tally.yes(actor);
        let needed = tally.needed();
        let end = if reached {
            // W reached already (ONE): the copies still go out, and hint on failure.
            let (hints, me) = (inner.hints.clone(), inner.me);
            let copy = copy.clone();
            tokio::spawn(
                async move { write_round(&others, &copy, tally, deadline, &hints, me).await },
            );
            RoundEnd::Acked
        } else {
            write_round(&others, &copy, tally, deadline, &inner.hints, inner.me).await
        };
        hint_skipped(&set, &copy, &inner.hints);
        match end {
            RoundEnd::Acked => Ok(copy.record.version),
            // Only a flush floor above the write makes a replica refuse a join.
            RoundEnd::Stale(current) => {
                inner.clock.observe(current);
                Err(ClusterError::Contended { attempts: 1 })
            }
            RoundEnd::Short { acked } => Err(ClusterError::Timeout { acked, needed }),
        }
    }

    /// Sends `item` (a siblings write) to the first live replica that takes it and
    /// reads back the state it stored. A replica that was not reached is passed over;
    /// one that may have applied the write is not (a second dot would make the same
    /// write two siblings), and the write is reported as possibly applied.
    async fn dot_at_a_replica(
        &self,
        set: &ReplicaSet,
        item: WriteItem,
        deadline: Instant,
        needed: usize,
    ) -> Result<(NodeId, Record), ClusterError> {
        let unknown = |acked| ClusterError::Timeout { acked, needed };
        for t in &set.live {
            let sent = tokio::time::timeout_at(deadline, t.api.write(vec![item.clone()])).await;
            match sent {
                Err(_) | Ok(Err(ReplicaError::Timeout)) => return Err(unknown(0)),
                Ok(Err(ReplicaError::Failed(why))) => match why.find(TOO_MANY_SIBLINGS) {
                    Some(at) => return Err(ClusterError::Refused(why[at..].to_string())),
                    None => return Err(ClusterError::Protocol(why)),
                },
                Ok(Err(_)) => continue,
                Ok(Ok(outcomes)) => match outcomes.as_slice() {
                    [WriteOutcome::Applied] => {}
                    [WriteOutcome::Stale { current }] => {
                        self.inner.clock.observe(*current);
                        return Err(ClusterError::Contended { attempts: 1 });
                    }
                    // Dotted and stored by a replica catching up: it may not count, and
                    // the write may not go elsewhere (a second dot would make it two
                    // siblings). Its state could not be read back anyway (its reads are
                    // refused), so this ends as before: possibly applied.
                    [WriteOutcome::StoredNotCounted] => return Err(unknown(0)),
                    _ => {
                        return Err(ClusterError::Protocol(
                            "write answered the wrong count".into(),
                        ))
                    }
                },
            }
            let read = tokio::time::timeout_at(deadline, t.api.read(vec![item.key.clone()])).await;
            return match read {
                Ok(Ok(mut got)) => match (got.pop(), got.is_empty()) {
                    (
                        Some(Some(
                            state @ Record {
                                body: Body::Siblings(_),
                                ..
                            },
                        )),
                        true,
                    ) => Ok((t.node, state)),
                    _ => Err(ClusterError::Protocol(
                        "a siblings write read back no siblings state".into(),
                    )),
                },
                // Stored on that replica, which anti-entropy spreads from.
                _ => Err(unknown(1)),
            };
        }
        Err(ClusterError::Unavailable { needed, alive: 0 })
    }
}

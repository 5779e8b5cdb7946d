//! Driving a layout change to its end on this node (docs/cluster.md, "Changing the
//! layout"). Every node, for the layout it holds:
//!
//! 1. **ack**: once requests it started under older layouts are over (the longest a
//!    request may take, after installing the layout), it publishes `layout_acked` by
//!    gossip. From then on it writes to the new and the previous replicas alike.
//! 2. **copy**: once every node acknowledged (departing nodes that are down or were
//!    replaced excepted),
//!    no coordinator writes to the previous replicas alone any more, so what they hold
//!    now is all a new replica can miss. It copies each incoming partition: first a
//!    snapshot streamed from one previous replica (node/stream_in.rs, at the stream
//!    rate, [`STREAMS_AT_ONCE`] partitions at a time), then a Merkle catch-up against at least N - W + 1 previous replicas (within
//!    the background byte budget), so that every write acknowledged by W of them is
//!    among what it got; then it publishes `layout_synced`.
//! 3. **settle**: once every member reports its incoming partitions copied, the layout
//!    without the transition is committed (any node may: the register takes one).
//! 4. **clean up**: once every node acknowledged a layout without transition, partitions
//!    this node no longer holds are deleted.

use super::background::tick;
use super::copy_progress::{CopyPhase, PartitionCopy};
use super::ClusterNode;
use crate::gossip::Member;
use crate::layout::{driver, Layout};
use crate::partition_size::PartitionSize;
use crate::replica_api::{Liveness, PeerState};
use crate::replica_store::DropStep;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the driver looks at the layout.
const STEP_EVERY: Duration = Duration::from_millis(250);

/// Incoming partitions streamed at once (their pages share the stream rate): one stream
/// waits in turn on the source's scan, the bus and this node's writes, so several keep
/// both sides busy; few, so that the pages held (two per stream) stay a few MB.
const STREAMS_AT_ONCE: usize = 4;

/// Records deleted per batch when cleaning up a partition.
const DROP_BATCH: usize = 1000;

/// This node's progress through the layout it holds.
#[derive(Debug, Clone, Default)]
pub struct LayoutProgress {
    /// The layout version the fields below are about, and when it was installed.
    pub version: u64,
    installed_at: Option<Instant>,
    /// The newest version acknowledged (published by gossip).
    pub acked: u64,
    /// The newest version whose incoming partitions were copied (published by gossip).
    pub synced: u64,
    /// The newest version after which no longer held partitions were deleted.
    pub cleaned: u64,
    /// Incoming partitions of `version` copied so far.
    pub copied: BTreeSet<u16>,
    /// Keys copied into this node by layout changes since it started: records the
    /// snapshots streamed, and keys the Merkle catch-up repaired.
    pub keys_copied: u64,
    /// When copying for `version` began.
    pub copy_started: Option<Instant>,
    /// When this node first saw every member's partitions of `version` copied (the
    /// change ready to end; `driver::settles_now`).
    settle_ready: Option<Instant>,
    /// Each incoming partition's copy for `version` (node/copy_progress.rs).
    pub partitions: BTreeMap<u16, PartitionCopy>,
    /// The incoming partitions' sizes on their previous replicas, asked once when
    /// copying began (for the progress and the time left).
    pub expected: BTreeMap<u16, PartitionSize>,
    sizes_asked: bool,
}

pub(super) async fn drive(node: Arc<ClusterNode>) {
    while tick(&node, STEP_EVERY).await {
        node.transition_step().await;
    }
}

impl ClusterNode {
    /// The longest a request started under an older layout may still run.
    fn drain_time(&self) -> Duration {
        let c = &self.config.cluster;
        driver::drain_time(c.request_timeout, c.consensus_timeout)
    }

    async fn transition_step(&self) {
        let Some(layout) = self.layout.get() else {
            return;
        };
        if self.removed.load(Ordering::Relaxed) != 0 {
            return;
        }
        let acked_now = {
            let mut p = self.progress.lock();
            if p.version != layout.version {
                p.version = layout.version;
                p.installed_at = Some(Instant::now());
                p.copied.clear();
                p.copy_started = None;
                p.settle_ready = None;
                p.partitions.clear();
                p.expected.clear();
                p.sizes_asked = false;
            }
            let drained = p
                .installed_at
                .is_some_and(|t| t.elapsed() >= self.drain_time());
            let ack = p.acked < layout.version && drained;
            if ack {
                p.acked = layout.version;
            }
            ack
        };
        if acked_now {
            tracing::info!(version = layout.version, "layout acknowledged");
            self.publish_progress().await;
        }
        let members = self.gossip_members();
        if !self.all_report(&layout, &members, |m| m.layout_acked, |p| p.acked) {
            return;
        }
        if layout.transition.is_some() {
            if self.progress.lock().synced < layout.version {
                self.copy_incoming(&layout).await;
            }
            let synced = self.progress.lock().synced >= layout.version;
            if synced && self.all_members_synced(&layout, &members) {
                let ready_for = {
                    let mut p = self.progress.lock();
                    p.settle_ready.get_or_insert_with(Instant::now).elapsed()
                };
                let is_down = |id| self.live.state(id) == PeerState::Down;
                let patience = self.drain_time();
                if driver::settles_now(&layout, self.me.id, is_down, ready_for, patience) {
                    self.settle(&layout).await;
                }
            }
        } else if self.progress.lock().cleaned < layout.version {
            self.clean_up(&layout).await;
        }
    }

    pub(super) fn gossip_members(&self) -> Vec<Member> {
        self.membership
            .lock()
            .as_ref()
            .map(|m| m.members())
            .unwrap_or_default()
    }

    async fn publish_progress(&self) {
        let (acked, synced) = {
            let p = self.progress.lock();
            (p.acked, p.synced)
        };
        let membership = self.membership.lock().clone();
        if let Some(m) = membership {
            m.set_layout_progress(acked, synced).await;
        }
    }

    /// Whether every node of `layout` reports `field` at least at its version (this
    /// node from its own progress). A departing node that is down is not waited for:
    /// it coordinates nothing while down (docs/cluster.md says what is left to it).
    fn all_report(
        &self,
        layout: &Layout,
        members: &[Member],
        field: impl Fn(&Member) -> u64,
        mine: impl Fn(&LayoutProgress) -> u64,
    ) -> bool {
        let me = mine(&self.progress.lock());
        let reported = |id| members.iter().find(|m| m.node == id).map_or(0, &field);
        let is_down = |id| self.live.state(id) == PeerState::Down;
        driver::all_report(layout, self.me.id, me, reported, is_down)
    }

    fn all_members_synced(&self, layout: &Layout, members: &[Member]) -> bool {
        driver::all_members_synced(layout, self.me.id, |id| {
            members
                .iter()
                .filter(|m| m.node == id)
                .map(|m| m.layout_synced)
                .max()
                .unwrap_or(0)
        })
    }

    /// Copies every incoming partition not copied yet from the previous replicas that
    /// are not down: a snapshot from one of them, then a Merkle catch-up; a partition
    /// counts as copied once its snapshot arrived and at least N - W + 1 of them synced
    /// with this node without error.
    async fn copy_incoming(&self, layout: &Layout) {
        let (plan, ask_sizes) = {
            let mut p = self.progress.lock();
            p.copy_started.get_or_insert_with(Instant::now);
            let is_down = |n| self.live.state(n) == PeerState::Down;
            let plan = driver::copy_plan(layout, self.me.id, &p.copied, is_down);
            (plan, !std::mem::replace(&mut p.sizes_asked, true))
        };
        if ask_sizes {
            let sizes = self.partition_sizes(layout, &plan.todo).await;
            self.progress.lock().expected = sizes;
        }
        let to_stream: Vec<u16> = plan
            .todo
            .iter()
            .copied()
            .filter(|&part| !self.snapshot_arrived(part))
            .collect();
        futures::stream::iter(to_stream)
            .map(|part| self.stream_in(layout, part))
            .buffer_unordered(STREAMS_AT_ONCE)
            .collect::<Vec<bool>>()
            .await;
        // The catch-up runs for partitions whose snapshot arrived: for the others it
        // would copy the whole partition key by key, the slow way the snapshot avoids.
        let todo: Vec<u16> = plan
            .todo
            .iter()
            .copied()
            .filter(|&part| self.snapshot_arrived(part))
            .collect();
        let c = &self.config.cluster;
        let sources_needed = driver::sources_needed(c.replicas, c.write_quorum);
        let mut synced_by = Vec::new();
        for (source, parts) in plan.sources {
            let parts: Vec<u16> = parts.into_iter().filter(|p| todo.contains(p)).collect();
            if parts.is_empty() {
                continue;
            }
            let done = self.sync_with_peer(source, &parts).await;
            self.progress.lock().keys_copied += done.stats.keys_repaired;
            synced_by.extend(done.synced);
        }
        let finished = {
            let mut p = self.progress.lock();
            for part in driver::copied_now(&todo, &synced_by, sources_needed) {
                p.copied.insert(part);
                if let Some(c) = p.partitions.get_mut(&part) {
                    c.phase = CopyPhase::Copied;
                }
            }
            let all = driver::all_copied(layout, self.me.id, &p.copied);
            if all {
                p.synced = layout.version;
            }
            all
        };
        if finished {
            tracing::info!(
                version = layout.version,
                partitions = todo.len(),
                "incoming partitions copied"
            );
            self.publish_progress().await;
        }
    }

    /// Whether `partition`'s snapshot arrived for the layout being copied.
    fn snapshot_arrived(&self, partition: u16) -> bool {
        self.progress
            .lock()
            .partitions
            .get(&partition)
            .is_some_and(|c| matches!(c.phase, CopyPhase::CatchingUp | CopyPhase::Copied))
    }

    /// Commits the layout that ends the transition of `layout`.
    async fn settle(&self, layout: &Layout) {
        let next = match layout.settled() {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "cannot end the layout change");
                return;
            }
        };
        if let Err(e) = self.commit_layout(next).await {
            tracing::info!(error = %e, "ending the layout change did not commit here (another node may have)");
        }
    }

    /// Deletes what this node holds of partitions `layout` does not give it, as long as
    /// no newer layout is known here (installed, or seen on a request it served): a
    /// newer one may give a partition back, and its writes must not be deleted
    /// (replica_store/drop_partition.rs). A clean-up stopped that way is done again for
    /// the next layout without a transition.
    async fn clean_up(&self, layout: &Layout) {
        let gone = driver::partitions_to_drop(layout, self.me.id);
        let store = self.store.clone();
        let tag = self.peers.layout_tag().clone();
        let planned = layout.version;
        let dropped = tokio::task::spawn_blocking(move || -> Result<Option<u64>, String> {
            let still_dropped = || tag.newest_known() <= planned;
            let mut dropped = 0u64;
            for p in gone {
                loop {
                    let step = store
                        .drop_partition(p, DROP_BATCH, &still_dropped)
                        .map_err(|e| e.to_string())?;
                    match step {
                        DropStep::Deleted(n) => dropped += n as u64,
                        DropStep::Done => break,
                        DropStep::Stopped => return Ok(None),
                    }
                }
            }
            Ok(Some(dropped))
        })
        .await;
        match dropped {
            Ok(Ok(Some(n))) => {
                if n > 0 {
                    tracing::info!(
                        version = layout.version,
                        keys = n,
                        "deleted partitions this node no longer holds"
                    );
                }
                self.progress.lock().cleaned = layout.version;
            }
            // Tried again every step until the newer layout is installed: not logged
            // as news each time.
            Ok(Ok(None)) => tracing::debug!(
                version = layout.version,
                "partition clean-up stopped: a newer layout is known"
            ),
            Ok(Err(e)) => tracing::error!(error = %e, "cannot delete partitions no longer held"),
            Err(e) => tracing::error!(error = %e, "partition clean-up failed"),
        }
    }
}

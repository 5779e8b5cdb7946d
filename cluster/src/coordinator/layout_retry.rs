//! A replica refused a request because it holds a newer layout than the one the request
//! was tagged with (rpc/layout_tag.rs, docs/cluster-protocol.md "Layout tags"). The
//! coordinator's placement is then out of date: it fetches the newer layout from the
//! refusing replica, installs it, and runs the request again under the new placement,
//! once. A refusal applied nothing, so it never gets a hint.
//!
//! A request that reached its quorums among replicas that did not refuse stands: those
//! replicas hold this node's layout or an older one, so the change that made ours stale
//! is not acknowledged by every node yet, and no new owner has started copying what it
//! must hold (docs/cluster.md, "Changing the layout"). Reads are the exception: they are
//! run again whenever a replica refused, since the cheap thing is to read where the
//! newer layout says.

use super::{Coordinator, ReplicaSet};
use crate::replica_api::ReplicaError;
use crate::NodeId;
use async_trait::async_trait;
use parking_lot::Mutex;
use std::sync::atomic::Ordering;

/// Where the coordinator gets a newer layout (the node: `GetLayout` from the refusing
/// peer, then the same checks and installation as any layout it adopts).
#[async_trait]
pub trait LayoutSource: Send + Sync + 'static {
    /// Fetches the layout `from` holds and installs it if it is newer than this node's;
    /// true when this node then holds `version` or newer.
    async fn catch_up(&self, from: NodeId, version: u64) -> bool;
}

/// The newest stale-layout refusal seen during one attempt of a request: the refusing
/// node and its layout version.
#[derive(Default)]
pub(crate) struct Refusals(Mutex<Option<(NodeId, u64)>>);

impl Refusals {
    /// Notes `e` from `node` if it is a stale-layout refusal; true if it was.
    pub(crate) fn note(&self, node: NodeId, e: &ReplicaError) -> bool {
        let ReplicaError::StaleLayout { version } = *e else {
            return false;
        };
        let mut seen = self.0.lock();
        if seen.is_none_or(|(_, v)| v < version) {
            *seen = Some((node, version));
        }
        true
    }

    /// `answer`, with a stale-layout refusal from `node` noted and turned into
    /// `refusal` (the answer a replica gives when it will not take part); other errors
    /// are `None`.
    pub(crate) fn answer_or<T>(
        &self,
        node: NodeId,
        answer: Result<T, ReplicaError>,
        refusal: T,
    ) -> Option<T> {
        match answer {
            Ok(a) => Some(a),
            Err(e) if self.note(node, &e) => Some(refusal),
            Err(_) => None,
        }
    }

    /// Whether a refusal was noted (and not taken yet).
    pub(crate) fn seen(&self) -> bool {
        self.0.lock().is_some()
    }

    fn take(&self) -> Option<(NodeId, u64)> {
        self.0.lock().take()
    }
}

/// One request's single retry under a newer layout.
#[derive(Default)]
pub(crate) struct LayoutRetry {
    used: bool,
}

impl LayoutRetry {
    /// After an attempt on `set`: if a replica refused it for a stale layout and this
    /// request has not caught up before, fetches the newer layout. True when the request
    /// should be planned again and retried.
    pub(crate) async fn after(&mut self, coordinator: &Coordinator, set: &ReplicaSet) -> bool {
        let Some((from, version)) = set.refusals.take() else {
            return false;
        };
        if self.used {
            return false;
        }
        self.used = true;
        let inner = &coordinator.inner;
        let Some(source) = &inner.layout_source else {
            return false;
        };
        inner
            .counters
            .layout_retries
            .fetch_add(1, Ordering::Relaxed);
        let caught_up = source.catch_up(from, version).await;
        if !caught_up {
            tracing::warn!(peer = %from, version, "a replica holds a newer layout that this node could not fetch");
        }
        caught_up
    }
}

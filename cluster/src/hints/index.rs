//! The hint store's in-memory index: what the keyspace holds, so bounds and stats never
//! scan the engine. Rebuilt from the keyspace on open.

use crate::NodeId;
use std::collections::BTreeMap;

/// One stored hint, as the bounds need it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HintMeta {
    pub(crate) target: NodeId,
    pub(crate) bytes: u64,
    pub(crate) stored_at_ms: u64,
}

#[derive(Default)]
pub(crate) struct HintIndex {
    pub(crate) next_seq: u64,
    pub(crate) by_seq: BTreeMap<u64, HintMeta>,
    pub(crate) per_target: BTreeMap<NodeId, u64>,
    pub(crate) bytes: u64,
}

impl HintIndex {
    pub(crate) fn add(&mut self, seq: u64, meta: HintMeta) {
        self.next_seq = self.next_seq.max(seq + 1);
        self.bytes += meta.bytes;
        *self.per_target.entry(meta.target).or_default() += 1;
        self.by_seq.insert(seq, meta);
    }

    pub(crate) fn remove(&mut self, seq: u64) -> Option<HintMeta> {
        let meta = self.by_seq.remove(&seq)?;
        self.bytes -= meta.bytes;
        if let Some(n) = self.per_target.get_mut(&meta.target) {
            *n -= 1;
            if *n == 0 {
                self.per_target.remove(&meta.target);
            }
        }
        Some(meta)
    }
}

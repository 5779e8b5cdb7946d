//! What every simulated component shares: the one seeded random source, the network's
//! state (cut links, loss, delays), which incarnation of each node is running and its
//! replica store, the event counter that orders the history, and the trace hash that
//! proves a seed replays.

use super::SimStats;
use crate::replica_store::ReplicaStore;
use crate::NodeId;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The network's fault settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetState {
    /// Node pairs that cannot talk (both orders are stored).
    pub(crate) cuts: BTreeSet<(NodeId, NodeId)>,
    /// Chance, per mille, that a request is lost before it is applied; the same again
    /// that its reply is lost after it was applied.
    pub(crate) loss_per_mille: u32,
    /// One-way delay of a message, drawn uniformly from this range (ms).
    pub(crate) delay_ms: (u64, u64),
}

/// A running node as the network reaches it.
#[derive(Clone)]
pub(crate) struct Running {
    pub(crate) incarnation: u64,
    pub(crate) store: Arc<ReplicaStore>,
}

/// What one message's trip will be, drawn when it is sent.
pub(crate) struct Trip {
    pub(crate) request_delay: Duration,
    pub(crate) request_lost: bool,
    pub(crate) reply_delay: Duration,
    pub(crate) reply_lost: bool,
}

pub(crate) struct World {
    rng: Mutex<StdRng>,
    net: Mutex<NetState>,
    running: Mutex<BTreeMap<NodeId, Running>>,
    events: Mutex<u64>,
    trace: Mutex<u64>,
    pub(crate) stats: Mutex<SimStats>,
    start: Instant,
    /// Print every traced event to stderr (`KVD_SIM_TRACE=1`), to follow a failing seed.
    print: bool,
}

impl World {
    pub(crate) fn new(seed: u64) -> World {
        World {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            net: Mutex::new(NetState {
                delay_ms: (1, 5),
                ..NetState::default()
            }),
            running: Mutex::new(BTreeMap::new()),
            events: Mutex::new(0),
            trace: Mutex::new(seed),
            stats: Mutex::new(SimStats::default()),
            start: Instant::now(),
            print: std::env::var_os("KVD_SIM_TRACE").is_some_and(|v| v == "1"),
        }
    }

    /// Virtual milliseconds since the simulation started.
    pub(crate) fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// A draw from the one random source. Every draw happens on the simulation's one
    /// thread in an order fixed by the seed, so the whole run replays.
    pub(crate) fn rng<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        f(&mut self.rng.lock())
    }

    /// True with probability `per_mille` / 1000.
    pub(crate) fn chance(&self, per_mille: u32) -> bool {
        self.rng(|r| r.gen_range(0..1000) < per_mille)
    }

    /// The next number of the history's total order of events (invocations and
    /// completions): finer than virtual time, in which many events share a millisecond.
    pub(crate) fn next_event(&self) -> u64 {
        let mut events = self.events.lock();
        *events += 1;
        *events
    }

    /// Folds one event into the trace hash (virtual time first).
    pub(crate) fn trace(&self, event: std::fmt::Arguments<'_>) {
        let line = format!("{} {event}", self.now_ms());
        if self.print {
            eprintln!("{line}");
        }
        let mut hash = self.trace.lock();
        *hash = xxh3_64_with_seed(line.as_bytes(), *hash);
    }

    pub(crate) fn trace_hash(&self) -> u64 {
        *self.trace.lock()
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut SimStats)) {
        f(&mut self.stats.lock());
    }

    pub(crate) fn net(&self) -> NetState {
        self.net.lock().clone()
    }

    pub(crate) fn set_net(&self, f: impl FnOnce(&mut NetState)) {
        f(&mut self.net.lock());
    }

    /// Whether `a` and `b` are on opposite sides of a partition.
    pub(crate) fn is_cut(&self, a: NodeId, b: NodeId) -> bool {
        a != b && self.net.lock().cuts.contains(&(a, b))
    }

    /// Draws the delays and losses of one message between `from` and `to`.
    pub(crate) fn plan_trip(&self) -> Trip {
        let net = self.net();
        let (lo, hi) = net.delay_ms;
        let delay = || Duration::from_millis(self.rng(|r| r.gen_range(lo..=hi.max(lo))));
        Trip {
            request_delay: delay(),
            request_lost: self.chance(net.loss_per_mille),
            reply_delay: delay(),
            reply_lost: self.chance(net.loss_per_mille),
        }
    }

    /// The running incarnation of `node`, if it is up.
    pub(crate) fn running(&self, node: NodeId) -> Option<Running> {
        self.running.lock().get(&node).cloned()
    }

    /// Whether incarnation `incarnation` of `node` is the one running.
    pub(crate) fn is_running(&self, node: NodeId, incarnation: u64) -> bool {
        self.running(node)
            .is_some_and(|r| r.incarnation == incarnation)
    }

    pub(crate) fn set_running(&self, node: NodeId, running: Option<Running>) {
        let mut map = self.running.lock();
        match running {
            Some(r) => map.insert(node, r),
            None => map.remove(&node),
        };
    }
}

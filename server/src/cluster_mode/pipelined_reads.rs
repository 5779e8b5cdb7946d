//! Pipelined reads on the ring (docs/cluster.md, "Pipelining"). A connection runs its
//! commands one after another, each waiting for its replicas; a pipeline of GETs would
//! make one round of replica reads per command, one after another, so the batching of
//! reads per peer (kv_cluster's rpc/batcher.rs) never had more than one key of it to
//! group. A run of read-only key commands in one pipeline instead reads all its keys at
//! once, then runs each command in order on what was read.
//!
//! Only reads are run ahead: a client sent the whole run before it saw any reply, so
//! its commands overlap in time and any order of their reads is one it could have got
//! (a key named twice is read once, so both commands see the same value, as they would
//! one after the other with no write between). Writes keep their order: a pipelined
//! `SET data` then `SET flag` must never let another client see the flag without the
//! data, which running them together could.

use super::{read_keys, route_of, Route};
use crate::commands::{self, table};
use crate::keyspace::txn::CommandMap;
use crate::keyspace::Entry;
use crate::state::{Client, Shared};
use bytes::Bytes;
use kv_cluster::ring::{Ring, RingError};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Commands of one run at most, and keys: bound what one connection reads at once (and
/// holds) beyond what a single command of it would.
const MAX_RUN: usize = 64;
const MAX_KEYS: usize = 1024;

/// The keys of a run of pipelined reads, read from their replicas together.
#[derive(Debug, Default)]
pub struct ReadAhead {
    /// How many commands, from the first, the run covers.
    pub commands: usize,
    /// Each command's spec as admission's checks resolved it when the run was formed
    /// ([`commands::groupable`]), so that running it neither looks the name up nor
    /// checks it again ([`commands::admit_in_run`]).
    admitted: Vec<&'static table::CommandSpec>,
    reads: CommandMap<(usize, Bytes), Result<Option<Entry>, RingError>>,
}

/// A command of a read-ahead run: the run, and the command's place in it.
#[derive(Debug, Clone, Copy)]
pub struct InRun<'a> {
    /// The run's reads.
    pub ahead: &'a ReadAhead,
    /// The command's index in the run (0 for its first).
    pub index: usize,
}

impl InRun<'_> {
    /// The command's spec, admitted with the run; it routes to a ring read of its keys.
    pub fn admitted(&self) -> Option<&'static table::CommandSpec> {
        self.ahead.admitted.get(self.index).copied()
    }
}

impl ReadAhead {
    /// What was read of `key` in database `db`; `None` if it was not read ahead.
    pub fn get(&self, db: usize, key: &Bytes) -> Option<&Result<Option<Entry>, RingError>> {
        self.reads.get(&(db, key.clone()))
    }
}

/// Reads the keys of the run of read-only key commands that starts `cmds` (at most
/// [`MAX_RUN`] commands, and [`MAX_KEYS`] keys unless its first command names more), if
/// it holds at least two: commands the client may run (admission's checks, without side
/// effects) that route to a ring read in its database. `None` otherwise; the commands
/// then run one by one as before.
pub async fn read_ahead(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &Client,
    cmds: &[Vec<Bytes>],
) -> Option<ReadAhead> {
    if cmds.len() < 2 {
        return None;
    }
    let mut keys: Vec<Bytes> = Vec::new();
    let mut specs = Vec::new();
    let mut run = 0;
    for args in cmds.iter().take(MAX_RUN) {
        let looked_up = table::lookup(&args[0]);
        // A write ends the run before the admission checks (a pipeline of SETs).
        if looked_up.is_some_and(|s| s.has(table::WRITE)) {
            break;
        }
        let Some(spec) = commands::groupable(srv, client, args, looked_up) else {
            break;
        };
        let read = !spec.has(table::WRITE)
            && route_of(srv, client, spec, args) == (Route::Keys { prefetch: true });
        if !read {
            break;
        }
        let named = spec.keys(args);
        if run > 0 && keys.len() + named.len() > MAX_KEYS {
            break;
        }
        keys.extend(named.into_iter().cloned());
        specs.push(spec);
        run += 1;
    }
    if run < 2 {
        return None;
    }
    keys.sort();
    keys.dedup();
    srv.counters
        .pipelined_reads_ahead
        .fetch_add(run as u64, Ordering::Relaxed);
    let db = client.db;
    let fetched = read_keys(ring, db, client.consistency, &keys).await;
    Some(ReadAhead {
        commands: run,
        admitted: specs,
        reads: keys.into_iter().map(|k| (db, k)).zip(fetched).collect(),
    })
}

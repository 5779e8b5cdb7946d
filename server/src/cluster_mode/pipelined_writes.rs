//! Grouped pipelined writes on the ring, when the node is configured for them
//! (`cluster-group-pipelined-writes yes`; docs/cluster.md, "Pipelining"). By default a
//! connection's writes run one after another, each waiting for its W replicas, so that
//! a pipelined `SET data`, `SET flag` never lets another client see the flag without
//! the data. That costs a whole replication round per command. With grouping on, a run
//! of consecutive blind writes of an eventual database (SET, SETEX, PSETEX, MSET; each
//! key named once in the run) is staged in order and replicated as one round
//! (kv_cluster's coordinator/batch_write.rs): one request per replica, one engine batch
//! on each. Each command still gets its own reply, in order, and only once its own keys
//! reached W replicas; what is given up is the order in which other clients may see
//! the run's writes while it is in flight, as with Redis Cluster pipelines across slots.

use super::{outcome, ring_puts, route_of, stage, Route};
use crate::commands::{self, table, Admission};
use crate::keyspace::txn::RingReads;
use crate::protocol::Reply;
use crate::state::{Client, Shared};
use bytes::Bytes;
use kv_cluster::ring::Ring;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Commands of one run at most, and keys: bound what one connection holds in flight.
const MAX_RUN: usize = 64;
const MAX_KEYS: usize = 1024;

/// How many commands from the start of `cmds` form a run of blind writes that may be
/// replicated together (0 or 1: none): commands the client may run (admission's
/// checks, without side effects) that route to a blind ring write in its database and
/// name no key an earlier command of the run named.
fn run_length(srv: &Shared, client: &Client, cmds: &[Vec<Bytes>]) -> usize {
    // Sized for a run of one-key commands up front: growing it by doubling, and a set
    // per command for its own keys, were about 1,900 instructions per grouped SET.
    let mut named: NamedKeys =
        NamedKeys::with_capacity_and_hasher(cmds.len().min(MAX_RUN), Default::default());
    let mut run = 0;
    for args in cmds.iter().take(MAX_RUN) {
        let looked_up = table::lookup(&args[0]);
        let Some(spec) = commands::groupable(srv, client, args, looked_up) else {
            break;
        };
        let blind = spec.has(table::WRITE)
            && route_of(srv, client, spec, args) == (Route::Keys { prefetch: false });
        if !blind {
            break;
        }
        let mut keys = spec.key_args(args);
        if run > 0 && named.len() + keys.clone().count() > MAX_KEYS {
            break;
        }
        // A key named before in the run, or twice by this command, ends the run here
        // (what this command inserted before the repeat does not matter then).
        if !keys.all(|k| named.insert(k)) {
            break;
        }
        run += 1;
    }
    run
}

/// The keys a run named so far. Keys come from clients, so the hasher is seeded per
/// process (foldhash's), as the transaction's own maps are.
type NamedKeys<'a> = HashSet<&'a Bytes, foldhash::fast::RandomState>;

/// Runs the run of blind writes that starts `cmds` as one replication round, if this
/// node groups pipelined writes and the run holds at least two commands: one reply per
/// command of the run, in order. `None`: the commands run one by one.
pub async fn run_grouped(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    cmds: &[Vec<Bytes>],
) -> Option<Vec<Reply>> {
    if cmds.len() < 2 || !srv.config.read().cluster.group_pipelined_writes {
        return None;
    }
    let run = run_length(srv, client, cmds);
    if run < 2 {
        return None;
    }
    let started = Instant::now();
    // Each command staged in order, as if alone; its keys' puts go into one round.
    let mut staged = Vec::with_capacity(run);
    let mut puts = Vec::new();
    for args in &cmds[..run] {
        let (spec, reply, keys) = match commands::admit(srv, client, args) {
            Admission::Run(spec) => {
                let (reply, writes) = stage(srv, client, spec, args, RingReads::default());
                let mine = ring_puts(writes);
                let keys = puts.len()..puts.len() + mine.len();
                puts.extend(mine);
                (Some(spec), reply, keys)
            }
            Admission::Done(reply) => (None, reply, 0..0),
        };
        staged.push((spec, reply, keys));
    }
    srv.counters
        .pipelined_writes_grouped
        .fetch_add(run as u64, Ordering::Relaxed);
    let results = ring.put_many(puts, client.consistency).await;
    let elapsed = started.elapsed();
    let mut replies = Vec::with_capacity(run);
    for ((spec, reply, keys), args) in staged.into_iter().zip(cmds) {
        let reply = match outcome(&results[keys.clone()], keys.len()) {
            Ok(()) => reply,
            Err(failed) => failed,
        };
        if let Some(spec) = spec {
            commands::after_command(srv, client, spec, args, elapsed, &reply);
        }
        replies.push(reply);
    }
    Some(replies)
}

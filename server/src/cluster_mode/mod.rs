//! Commands on a cluster node (docs/cluster.md, "Commands on the ring"): each command is
//! admitted exactly as on a single node, then [`route::route`] decides where it runs.
//! Key commands run their ordinary code (crate::commands) over a ring transaction: the
//! keys they name are read from their replicas first, and their writes are replicated
//! when they return. The reply waits for the quorum; nothing is acknowledged before W
//! replicas hold it.

pub mod advertised;
pub mod consensus;
pub mod forward;
pub mod idempotent;
pub mod keyspace;
pub mod layout;
pub mod lock_wait;
pub mod metadata;
pub mod pipelined_reads;
pub mod pipelined_writes;
pub mod pubsub;
pub mod route;
pub mod serial;
pub mod siblings;
pub mod transaction;

use crate::commands::{self, table, Admission, Ctx};
use crate::keyspace::encoding::decode_value;
use crate::keyspace::txn::{CommandMap, RingReads};
use crate::keyspace::{Entry, Txn};
use crate::protocol::{Reply, Version};
use crate::state::{Client, Shared};
use bytes::Bytes;
use kv_cluster::config::Consistency;
use kv_cluster::replica_api::ItemKey;
use kv_cluster::ring::{Ring, RingError};
use kv_cluster::{Body, Record};
use pipelined_reads::{InRun, ReadAhead};
use route::Route;
use std::sync::Arc;
use std::time::Instant;

/// Runs one command of a client connected to a cluster node.
pub async fn execute(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    args: &[Bytes],
) -> Reply {
    execute_read_ahead(srv, ring, client, args, None).await
}

/// [`execute`] for a command of a run of pipelined reads whose keys were read ahead
/// (`ahead`, crate::cluster_mode::pipelined_reads): it reads them from there, and is
/// neither looked up, checked nor routed again (it was with the run:
/// [`commands::admit_in_run`]).
pub async fn execute_read_ahead(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    args: &[Bytes],
    ahead: Option<InRun<'_>>,
) -> Reply {
    let in_run = ahead.and_then(|a| a.admitted());
    let admitted = match in_run {
        Some(spec) => commands::admit_in_run(srv, client, spec),
        None => commands::admit(srv, client, args),
    };
    let spec = match admitted {
        Admission::Run(spec) => spec,
        Admission::Done(reply) => return reply,
    };
    let ahead = ahead.map(|a| a.ahead);
    let started = Instant::now();
    // A command of a read-ahead run was routed to a ring read of its keys with the run.
    let route = match in_run {
        Some(_) => Route::Keys { prefetch: true },
        None => route_of(srv, client, spec, args),
    };
    let reply = match route {
        // Admin commands (COMPACT, CHECKPOINT, SAVE, ...) may wait on the disk: as on
        // the single-node path, they leave the async worker for it.
        Route::Local if commands::may_block(args, &srv.store.db) => {
            tokio::task::block_in_place(|| commands::run(srv, client, spec, args))
        }
        Route::Local => commands::run(srv, client, spec, args),
        Route::Refused(why) => Reply::error(why),
        Route::Keys { prefetch } => on_keys(srv, ring, client, spec, args, prefetch, ahead).await,
        Route::Consensus => consensus::run(srv, ring, client, spec, args).await,
        Route::Transaction => transaction::run_command(srv, ring, client, spec, args).await,
        Route::Exec => transaction::exec(srv, ring, client).await,
        Route::Watch => transaction::watch(ring, client, args).await,
        Route::Idempotent => idempotent::run(srv, ring, client, args).await,
        Route::Publish => pubsub::publish(srv, ring, client, spec, args),
        Route::Siblings => siblings::run(ring, client, spec, args).await,
        Route::Keyspace => keyspace::run(srv, ring, client, spec.name, args).await,
        Route::Repair => keyspace::repair(ring, args).await,
        Route::Merkle => keyspace::merkle(ring).await,
        Route::Layout => layout::run(ring, args).await,
        Route::Flush => metadata::flush(srv, ring, client, args).await,
        Route::Metadata => metadata::change(srv, ring, client, spec, args).await,
    };
    commands::after_command(srv, client, spec, args, started.elapsed(), &reply);
    reply
}

/// Where an admitted command runs for `client` (its database's mode, its consistency
/// level).
fn route_of(
    srv: &Shared,
    client: &Client,
    spec: &'static table::CommandSpec,
    args: &[Bytes],
) -> Route {
    let parent = container_of(spec, &args[0]);
    let (linearizable, siblings_db) = {
        let config = srv.config.read();
        let c = &config.cluster;
        (
            !c.eventual_databases.contains(&client.db),
            c.siblings_databases.contains(&client.db),
        )
    };
    match siblings::route(spec, parent, args, siblings_db) {
        Some(route) => route,
        None => {
            let route = route::route(spec, parent, args, linearizable);
            serial::upgrade(route, spec, client.consistency, linearizable)
        }
    }
}

/// The name of the container command (CLUSTER, CONFIG...) `spec` was resolved under,
/// if `name` (the command's first word) names one. A command named by its own spec
/// needs no table lookup: that spec is what `name` resolves to (a subcommand's spec is
/// named by its second word), and two lookups of a pipelined GET's name were 2-3% of its
/// CPU on the ring.
fn container_of(spec: &'static table::CommandSpec, name: &[u8]) -> Option<&'static str> {
    let top = if name.eq_ignore_ascii_case(spec.name.as_bytes()) {
        spec
    } else {
        table::lookup(name)?
    };
    (!top.subcommands.is_empty()).then_some(top.name)
}

/// A ring error as the client sees it.
pub fn ring_error(e: &RingError) -> Reply {
    Reply::error(e.to_string())
}

/// A replicated record as the single-node code sees a key: `None` when deleted. A key
/// of a siblings database shows its first value (keyspace commands only ask whether it
/// exists; its other commands read all values: siblings.rs).
pub fn entry_of(rec: &Record) -> Option<Entry> {
    let (ty, value) = match &rec.body {
        Body::Value { ty, payload } => (*ty, payload.clone()),
        Body::Siblings(s) => (
            kv_keyspace::ValueType::String,
            s.values().next().map(|(_, v)| v.clone())?,
        ),
        Body::Tombstone | Body::SiblingsWrite(_) => return None,
    };
    Some(Entry {
        ty,
        expire_at: rec.expire_at,
        value,
        version: Version::Committed(rec.version.ts),
    })
}

async fn on_keys(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    spec: &'static table::CommandSpec,
    args: &[Bytes],
    prefetch: bool,
    ahead: Option<&ReadAhead>,
) -> Reply {
    let db = client.db;
    let mut keys: Vec<Bytes> = spec.keys(args).into_iter().cloned().collect();
    keys.sort();
    keys.dedup();
    let mut reads = RingReads::default();
    if prefetch {
        // Keys read ahead with the rest of a pipelined run are not read again.
        let (mut missing, mut found) = (Vec::new(), Vec::new());
        for key in keys {
            match ahead.and_then(|a| a.get(db, &key)) {
                Some(got) => found.push((key, got.clone())),
                None => missing.push(key),
            }
        }
        let fetched = read_keys(ring, db, client.consistency, &missing).await;
        let mut read = Vec::with_capacity(found.len() + missing.len());
        for (key, got) in found.into_iter().chain(missing.into_iter().zip(fetched)) {
            match got {
                Ok(entry) => read.push(((db, key), entry)),
                Err(e) => return ring_error(&e),
            }
        }
        // Sorted once, not inserted key by key: the two sorted runs merge in one pass.
        reads = RingReads::from_vec(read);
    }
    let (reply, writes) = stage(srv, client, spec, args, reads);
    if writes.is_empty() {
        return reply;
    }
    replicate(ring, writes, client.consistency)
        .await
        .map_or_else(|e| e, |()| reply)
}

/// A key's write as the ring takes it: (database, key, encoded value or `None` for a
/// delete), last write per key first.
type RingWrite = (usize, Bytes, Option<Bytes>);

/// Runs a key command's ordinary code over a ring transaction that holds `reads`: its
/// reply and the writes it staged (none when it failed: an error writes nothing).
fn stage(
    srv: &Shared,
    client: &mut Client,
    spec: &'static table::CommandSpec,
    args: &[Bytes],
    reads: RingReads,
) -> (Reply, Vec<RingWrite>) {
    let Some(handler) = spec.handler else {
        return (
            Reply::error("ERR internal error: command without handler"),
            Vec::new(),
        );
    };
    let mut ctx = Ctx {
        srv,
        client,
        txn: Txn::on_ring(&srv.store, reads),
    };
    let reply = handler(&mut ctx, args).unwrap_or_else(|e| e);
    let writes = ctx.txn.into_ring_writes();
    if reply.is_error() {
        return (reply, Vec::new());
    }
    (reply, writes)
}

/// The live entries of `keys` of database `db`, read from their replicas at `level`,
/// all at once; one result per key, in order.
async fn read_keys(
    ring: &Arc<dyn Ring>,
    db: usize,
    level: Consistency,
    keys: &[Bytes],
) -> Vec<Result<Option<Entry>, RingError>> {
    if keys.is_empty() {
        // A pipelined command whose keys were all read ahead: nothing to ask (the ring's
        // call would still set up a request round, about 1,800 instructions).
        return Vec::new();
    }
    let items = keys
        .iter()
        .map(|k| ItemKey {
            db: db as u32,
            key: k.clone(),
        })
        .collect();
    // Together: one replica request per node for all of them (coordinator/read_many.rs).
    ring.get_many(items, level)
        .await
        .into_iter()
        .map(|got| got.map(|rec| rec.as_ref().and_then(entry_of)))
        .collect()
}

/// Replicates a command's writes, each key its own ring write, all in one round. All
/// succeed, or the client gets an error naming how many keys were written: keys of one
/// command live on different replicas, and there is no cross-key atomicity on the ring
/// (docs/cluster.md, "Multi-key commands").
async fn replicate(
    ring: &Arc<dyn Ring>,
    writes: Vec<RingWrite>,
    level: Consistency,
) -> Result<(), Reply> {
    let puts = ring_puts(writes);
    let total = puts.len();
    // One round for all of them (kv_cluster's coordinator/batch_write.rs).
    let results = ring.put_many(puts, level).await;
    outcome(&results, total)
}

/// A command's writes as ring puts, one per key (a key written twice by one command
/// keeps its last write).
fn ring_puts(writes: Vec<RingWrite>) -> Vec<(ItemKey, Body, Option<i64>)> {
    // Most commands write one key: no map to find its last write (a map's allocation
    // and hashing were about 350 instructions of a replicated SET).
    let last: Vec<RingWrite> = match writes.len() {
        0 | 1 => writes,
        _ => {
            let mut last: CommandMap<(usize, Bytes), Option<Bytes>> =
                CommandMap::with_capacity_and_hasher(writes.len(), Default::default());
            for (db, key, value) in writes {
                last.insert((db, key), value);
            }
            last.into_iter()
                .map(|((db, key), value)| (db, key, value))
                .collect()
        }
    };
    last.into_iter()
        .map(|(db, key, value)| {
            let (body, expire_at) = match value.as_ref().and_then(decode_value) {
                Some(d) => (
                    Body::Value {
                        ty: d.ty,
                        payload: d.payload,
                    },
                    d.expire_at,
                ),
                None => (Body::Tombstone, None),
            };
            (ItemKey { db: db as u32, key }, body, expire_at)
        })
        .collect()
}

/// What a command whose `total` keys were written with `results` tells its client:
/// nothing (success), the error of its one key, or how many keys were written.
fn outcome(results: &[Result<kv_cluster::Version, RingError>], total: usize) -> Result<(), Reply> {
    let failed: Vec<&RingError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    match failed.first() {
        None => Ok(()),
        Some(e) if total == 1 => Err(ring_error(e)),
        Some(e) => Err(Reply::error(format!(
            "PARTIAL {} of {total} keys were written; the first failure: {e}",
            total - failed.len()
        ))),
    }
}

#[cfg(test)]
mod tests;

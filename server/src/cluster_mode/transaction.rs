//! Multi-key work on the ring (docs/consistency.md, "Transactions on the ring"):
//! MULTI/EXEC with WATCH, commands that read and write several keys (RENAME, MSETNX,
//! COPY, BITOP...), and scripts that declare several keys. Their keys must hash
//! to one slot, as on Redis Cluster (CROSSSLOT otherwise). Each runs as one ring
//! transaction (kv_cluster's coordinator/txn.rs): every key is locked, the ordinary
//! single-node code runs once on the locked states, and its writes commit together,
//! linearizable with every other write of those keys, whichever node each client
//! reached.

use super::route::{route, Route, SCRIPT_RUNS};
use super::{entry_of, ring_error};
use crate::commands::transactions::{discard_transaction, MAX_WATCHED_KEYS};
use crate::commands::{self, table, Ctx};
use crate::keyspace::encoding::decode_value;
use crate::keyspace::txn::RingReads;
use crate::keyspace::Txn;
use crate::protocol::Reply;
use crate::scripting;
use crate::state::{Client, RingWatch, Shared};
use bytes::Bytes;
use kv_cluster::coordinator::{Snapshot, TxnDecision};
use kv_cluster::replica_api::ItemKey;
use kv_cluster::ring::Ring;
use kv_cluster::txn_lock::Intent;
use kv_cluster::{Body, Version};
use kv_keyspace::slot::key_slot;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Redis Cluster's reply when a request's keys are in different slots.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// `keys` of database `db` as ring items.
fn items<'a>(db: usize, keys: impl IntoIterator<Item = &'a Bytes>) -> Vec<ItemKey> {
    keys.into_iter()
        .map(|k| ItemKey {
            db: db as u32,
            key: k.clone(),
        })
        .collect()
}

/// Whether every key hashes to one slot (hash tags make that so).
fn one_slot(keys: &[ItemKey]) -> bool {
    keys.windows(2)
        .all(|w| key_slot(&w[0].key) == key_slot(&w[1].key))
}

/// A command that reads and writes several keys (RENAME a b, MSETNX..., a script with
/// several KEYS), as one transaction.
pub async fn run_command(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    spec: &'static table::CommandSpec,
    args: &[Bytes],
) -> Reply {
    let script = SCRIPT_RUNS.contains(&spec.name);
    let mut keys = match script {
        true => items(client.db, scripting::ring::key_arguments(args)),
        false => items(client.db, spec.keys(args)),
    };
    keys.sort();
    keys.dedup();
    if !one_slot(&keys) {
        return Reply::error(CROSSSLOT);
    }
    let commands = [args.to_vec()];
    match run(srv, ring, client, &commands, keys, &[], script).await {
        Ok(Some(mut replies)) => replies.pop().unwrap_or(Reply::Nil),
        Ok(None) => Reply::error("ERR internal error: a transaction without WATCH aborted"),
        Err(e) => e,
    }
}

/// EXEC on a ring: the queued commands as one transaction over their keys and the
/// watched ones.
pub async fn exec(srv: &Shared, ring: &Arc<dyn Ring>, client: &mut Client) -> Reply {
    let Some(queue) = client.multi.take() else {
        return Reply::error("ERR EXEC without MULTI");
    };
    let watched = std::mem::take(&mut client.ring_watched);
    let aborted_early = client.multi_error;
    discard_transaction(client, &srv.store);
    if aborted_early {
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    let mut keys: Vec<ItemKey> = watched
        .iter()
        .map(|w| ItemKey {
            db: w.db as u32,
            key: w.key.clone(),
        })
        .collect();
    for args in &queue {
        let spec = match commands::resolve(args) {
            Ok(s) => s,
            Err(e) => return e,
        };
        if let Some(why) = refused_inside_multi(spec, args) {
            return Reply::error(format!("EXECABORT Transaction discarded because of: {why}"));
        }
        keys.extend(items(client.db, spec.keys(args)));
    }
    keys.sort();
    keys.dedup();
    if !one_slot(&keys) {
        return Reply::error(CROSSSLOT);
    }
    if keys.is_empty() {
        // Only commands about the connection or the server: nothing to lock.
        let mut ctx = Ctx {
            srv,
            client,
            txn: Txn::on_ring(&srv.store, RingReads::default()),
        };
        let replies = queue
            .iter()
            .map(|a| commands::call_queued(&mut ctx, a))
            .collect();
        return Reply::Array(replies);
    }
    match run(srv, ring, client, &queue, keys, &watched, false).await {
        Ok(Some(replies)) => Reply::Array(replies),
        Ok(None) => Reply::NilArray,
        Err(e) => e,
    }
}

/// Why `args` cannot be queued in a MULTI on a ring, if it cannot.
fn refused_inside_multi(spec: &'static table::CommandSpec, args: &[Bytes]) -> Option<String> {
    if matches!(spec.name, "select" | "swapdb" | "move") {
        return Some(format!(
            "'{}' inside MULTI is not available in cluster mode: a transaction stays in the \
             database it started in",
            spec.name
        ));
    }
    let parent = table::lookup(&args[0])
        .filter(|p| !p.subcommands.is_empty())
        .map(|p| p.name);
    match route(spec, parent, args, true) {
        Route::Local | Route::Keys { .. } | Route::Consensus | Route::Transaction => None,
        Route::Refused(why) => Some(why),
        _ => Some(format!(
            "'{}' inside MULTI is not available in cluster mode: it works on the whole \
             cluster, not on the transaction's keys",
            spec.name
        )),
    }
}

/// WATCH on a ring: remembers each key's version as a quorum read finds it; EXEC
/// aborts when a key's version at commit differs (or its value expired meanwhile).
pub async fn watch(ring: &Arc<dyn Ring>, client: &mut Client, args: &[Bytes]) -> Reply {
    if client.multi.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    let db = client.db;
    for key in &args[1..] {
        if client
            .ring_watched
            .iter()
            .any(|w| w.db == db && w.key == key)
        {
            continue;
        }
        if client.ring_watched.len() >= MAX_WATCHED_KEYS {
            return Reply::error(format!(
                "ERR too many watched keys (kvd allows {MAX_WATCHED_KEYS} per client)"
            ));
        }
        let item = ItemKey {
            db: db as u32,
            // A copy: the argument is a slice of the client's input buffer.
            key: Bytes::copy_from_slice(key),
        };
        let record = match ring.get(item.clone(), client.consistency).await {
            Ok(r) => r,
            Err(e) => return ring_error(&e),
        };
        client.ring_watched.push(RingWatch {
            db,
            key: item.key,
            version: record.as_ref().map_or(Version::ZERO, |r| r.version),
            live: record.is_some_and(|r| r.live_value(now_ms()).is_some()),
        });
    }
    Reply::Ok
}

fn now_ms() -> i64 {
    kv_keyspace::clock::now_ms()
}

/// Whether no watched key changed: same version, and still live if it was.
fn watches_hold(watched: &[RingWatch], snapshot: &Snapshot, now: i64) -> bool {
    watched.iter().all(|w| {
        let item = ItemKey {
            db: w.db as u32,
            key: w.key.clone(),
        };
        let record = snapshot.get(&item).and_then(Option::as_ref);
        let version = record.map_or(Version::ZERO, |r| r.version);
        let live = record.is_some_and(|r| r.live_value(now).is_some());
        version == w.version && (live || !w.live)
    })
}

/// Runs `commands` as one transaction over `keys`: their replies, or `None` when a
/// watched key changed (nothing written). A failed command writes nothing, as on one
/// node; a failed script keeps what it wrote before failing, as in Redis.
async fn run(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    commands: &[Vec<Bytes>],
    keys: Vec<ItemKey>,
    watched: &[RingWatch],
    script: bool,
) -> Result<Option<Vec<Reply>>, Reply> {
    let level = client.consistency;
    let mut outcome: Option<Vec<Reply>> = None;
    let mut decide = |snapshot: &Snapshot| -> TxnDecision {
        outcome = None;
        if !watches_hold(watched, snapshot, now_ms()) {
            return TxnDecision::Abort;
        }
        let reads = snapshot
            .iter()
            .map(|(k, r)| {
                (
                    (k.db as usize, k.key.clone()),
                    r.as_ref().and_then(entry_of),
                )
            })
            .collect();
        let mut ctx = Ctx {
            srv,
            client: &mut *client,
            txn: Txn::on_ring(&srv.store, reads),
        };
        let replies: Vec<Reply> = match script {
            true => vec![run_script(&mut ctx, &commands[0])],
            false => commands
                .iter()
                .map(|a| commands::call_queued(&mut ctx, a))
                .collect(),
        };
        let writes = ctx.txn.into_ring_writes();
        let failed_alone = !script && commands.len() == 1 && replies[0].is_error();
        outcome = Some(replies);
        if failed_alone {
            return TxnDecision::Abort;
        }
        let mut intents = BTreeMap::new();
        for (db, key, value) in writes {
            let intent = match value.as_ref().and_then(decode_value) {
                Some(d) => Intent::Write {
                    body: Body::Value {
                        ty: d.ty,
                        payload: d.payload,
                    },
                    expire_at: d.expire_at,
                },
                None => Intent::Write {
                    body: Body::Tombstone,
                    expire_at: None,
                },
            };
            // A key written twice keeps its last write.
            intents.insert(ItemKey { db: db as u32, key }, intent);
        }
        TxnDecision::Commit(intents)
    };
    let committed = ring
        .transaction(&keys, level, &mut decide)
        .await
        .map_err(|e| ring_error(&e))?;
    Ok(outcome.map(|mut replies| {
        if let Some(version) = committed {
            replies
                .iter_mut()
                .for_each(|r| r.commit_versions(version.ts));
        }
        replies
    }))
}

/// A script, on this node's turn to run one and off the async worker (it may run
/// long), as single-key scripts run (super::consensus).
fn run_script(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let spec = match commands::resolve(args) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let Some(handler) = spec.handler else {
        return Reply::error("ERR internal error: command without handler");
    };
    let srv = ctx.srv;
    scripting::ring::off_async_worker(|| {
        let _turn = match scripting::ring::turn(srv, spec) {
            Ok(g) => g,
            Err(busy) => return busy,
        };
        handler(ctx, args).unwrap_or_else(|e| e)
    })
}

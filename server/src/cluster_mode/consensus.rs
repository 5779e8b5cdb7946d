//! Commands that run through single-key consensus (docs/consistency.md): the command's
//! ordinary single-node code is the change function of a consensus round. It runs on
//! the key's state as a majority of its replicas hold it, and what it writes becomes the
//! key's next state, accepted by a majority, or nothing is written. A round lost to a
//! concurrent command runs the code again on the newer state, so the reply a client
//! gets always describes the state its write was applied to.

use super::route::SCRIPT_RUNS;
use super::{entry_of, idempotent, ring_error};
use crate::commands::{table, Ctx};
use crate::keyspace::encoding::decode_value;
use crate::keyspace::txn::RingReads;
use crate::keyspace::Txn;
use crate::protocol::Reply;
use crate::scripting::{
    self,
    ring::{declared_keys, DeclaredKeys},
};
use crate::state::{Client, Shared};
use bytes::Bytes;
use kv_cluster::coordinator::Change;
use kv_cluster::replica_api::ItemKey;
use kv_cluster::ring::Ring;
use kv_cluster::{Body, Record};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Commands whose keys are independent: each key runs as its own one-key command in its
/// own round (no atomicity across keys, as for any multi-key command on the ring). The
/// reads among them come here at SERIAL (super::serial).
const PER_KEY: &[&str] = &["mset", "del", "unlink", "mget", "exists", "touch"];

/// True when `name` with `keys` distinct keys can run through consensus: one key, or a
/// command whose keys are independent.
pub fn runs_per_key(name: &str, keys: usize) -> bool {
    keys == 1 || PER_KEY.contains(&name)
}

/// Runs `args` through consensus on its keys.
pub async fn run(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    spec: &'static table::CommandSpec,
    args: &[Bytes],
) -> Reply {
    if SCRIPT_RUNS.contains(&spec.name) {
        return match declared_keys(args) {
            DeclaredKeys::None => scripting::ring::run_keyless(srv, client, spec, args),
            DeclaredKeys::One(key) => one_key(srv, ring, client, spec, args, key, None).await,
            DeclaredKeys::Several => {
                super::transaction::run_command(srv, ring, client, spec, args).await
            }
        };
    }
    let keys: Vec<Bytes> = spec.keys(args).into_iter().cloned().collect();
    if keys.len() <= 1 || !PER_KEY.contains(&spec.name) {
        let Some(key) = keys.first().cloned() else {
            return Reply::error("ERR internal error: a consensus command without a key");
        };
        return one_key(srv, ring, client, spec, args, key, None).await;
    }
    // A malformed MSET must be refused whole, before any of its parts runs.
    if spec.name == "mset" {
        if let Err(e) = crate::commands::strings::mset_pairs(args, "mset") {
            return e;
        }
    }
    // MSET k v k v ... / DEL k k ...: one single-key command per key, one after the
    // other (the handler borrows the connection's state).
    let mut replies = Vec::new();
    for part in split_per_key(spec.name, args) {
        let key = part[1].clone();
        replies.push(one_key(srv, ring, client, spec, &part, key, None).await);
    }
    merge_replies(spec.name, replies)
}

/// `MSET k1 v1 k2 v2` -> `[MSET k1 v1] [MSET k2 v2]`; `DEL a b` -> `[DEL a] [DEL b]`.
fn split_per_key(name: &str, args: &[Bytes]) -> Vec<Vec<Bytes>> {
    let step = if name == "mset" { 2 } else { 1 };
    args[1..]
        .chunks(step)
        .map(|c| {
            std::iter::once(args[0].clone())
                .chain(c.iter().cloned())
                .collect()
        })
        .collect()
}

/// One reply for the parts of a per-key command: the sum for DEL/UNLINK/EXISTS/TOUCH,
/// OK for MSET, the values in order for MGET, or the first error (for a write, with how
/// many keys were written).
fn merge_replies(name: &str, replies: Vec<Reply>) -> Reply {
    let total = replies.len();
    let failed: Vec<&Reply> = replies.iter().filter(|r| r.is_error()).collect();
    if let Some(Reply::Error(first)) = failed.first() {
        if matches!(name, "mget" | "exists" | "touch") {
            return Reply::error(first.to_string());
        }
        return Reply::error(format!(
            "PARTIAL {} of {total} keys were written; the first failure: {first}",
            total - failed.len()
        ));
    }
    if name == "mset" {
        return Reply::Ok;
    }
    if name == "mget" {
        // Each part is MGET of one key: a one-element array.
        let values = replies.into_iter().flat_map(|r| match r {
            Reply::Array(items) => items,
            other => vec![other],
        });
        return Reply::Array(values.collect());
    }
    let deleted = replies
        .iter()
        .map(|r| match r {
            Reply::Int(n) => *n,
            _ => 0,
        })
        .sum();
    Reply::Int(deleted)
}

/// Runs a command on `key` through consensus: at the key's proposer when that is
/// another node (super::forward), else here ([`run_here`]).
pub(super) async fn one_key(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    spec: &'static table::CommandSpec,
    args: &[Bytes],
    key: Bytes,
    request: Option<&Bytes>,
) -> Reply {
    if let Some(reply) = super::forward::at_proposer(ring, client, spec, args, &key, request).await
    {
        return reply;
    }
    run_here(srv, ring, client, spec, args, key, request).await
}

/// Runs a command on `key` as the change function of a consensus round proposed by
/// this node. With a `request` id (IDEMPOTENT, super::idempotent) the round first looks
/// for the request in the key's record: found, its stored reply is the answer and
/// nothing is applied; otherwise the reply is remembered in the record written.
pub(super) async fn run_here(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    spec: &'static table::CommandSpec,
    args: &[Bytes],
    key: Bytes,
    request: Option<&Bytes>,
) -> Reply {
    let Some(handler) = spec.handler else {
        return Reply::error("ERR internal error: command without handler");
    };
    let db = client.db;
    let level = client.consistency;
    let mut reply = Reply::Nil;
    let mut replayed = false;
    let mut change = |state: Option<&Record>| -> Change {
        replayed = false;
        if let Some(stored) = request.and_then(|id| idempotent::replay(state, id)) {
            reply = stored;
            replayed = true;
            return Change::Keep;
        }
        let command = Command {
            spec,
            handler,
            args,
            db,
            key: &key,
        };
        let change = apply(srv, client, &command, state, &mut reply);
        match request {
            Some(id) => idempotent::remember(srv, id, state, &reply, change),
            None => change,
        }
    };
    let item = ItemKey {
        db: db as u32,
        key: key.clone(),
    };
    match ring.consensus(item, level, &mut change).await {
        Ok(_) if replayed => {
            srv.counters
                .idempotent_replays
                .fetch_add(1, Ordering::Relaxed);
            reply
        }
        Ok(Some(version)) => {
            reply.commit_versions(version.ts);
            reply
        }
        Ok(None) => reply,
        Err(e) => ring_error(&e),
    }
}

/// A command bound for one key's consensus round.
struct Command<'a> {
    spec: &'static table::CommandSpec,
    handler: table::Handler,
    args: &'a [Bytes],
    db: usize,
    key: &'a Bytes,
}

/// Runs `command` on `state` (the key's record as a majority holds it): its reply goes
/// to `reply`, and what it wrote becomes the change.
///
/// A script (EVAL, FCALL...) is evaluated afresh on the state each round gives it, on
/// this node's turn to run a script (`scripting::ring::turn`), and off the async worker
/// (it may run long). A script that fails after writing keeps its writes, as on one
/// node and in Redis; any other command that fails writes nothing.
fn apply(
    srv: &Shared,
    client: &mut Client,
    command: &Command<'_>,
    state: Option<&Record>,
    reply: &mut Reply,
) -> Change {
    let Command {
        spec,
        handler,
        args,
        db,
        key,
    } = *command;
    let mut reads = RingReads::default();
    reads.insert(db, key.clone(), state.and_then(entry_of));
    let mut ctx = Ctx {
        srv,
        client,
        txn: Txn::on_ring(&srv.store, reads),
    };
    let writes = if SCRIPT_RUNS.contains(&spec.name) {
        let outcome = scripting::ring::off_async_worker(|| {
            let _turn = scripting::ring::turn(srv, spec)?;
            Ok(handler(&mut ctx, args).unwrap_or_else(|e| e))
        });
        match outcome {
            Ok(r) => *reply = r,
            Err(busy) => {
                *reply = busy;
                return Change::Keep;
            }
        }
        ctx.txn.into_ring_writes()
    } else {
        *reply = handler(&mut ctx, args).unwrap_or_else(|e| e);
        let writes = ctx.txn.into_ring_writes();
        if reply.is_error() {
            return Change::Keep;
        }
        writes
    };
    // One round decides one key: a command that also writes another key (SORT ...
    // STORE) cannot run here, and must not half-succeed.
    if writes.iter().any(|(d, k, _)| *d != db || k != key) {
        *reply = Reply::error(
            "ERR this command writes a key besides the one it names, which needs several \
             keys in one consensus round; it is not available in cluster mode \
             (docs/consistency.md)",
        );
        return Change::Keep;
    }
    // The key's last write is its next state.
    match writes.into_iter().next_back() {
        None => Change::Keep,
        Some((_, _, value)) => match value.as_ref().and_then(decode_value) {
            Some(d) => Change::Write {
                body: Body::Value {
                    ty: d.ty,
                    payload: d.payload,
                },
                expire_at: d.expire_at,
                request: None,
            },
            None => Change::Write {
                body: Body::Tombstone,
                expire_at: None,
                request: None,
            },
        },
    }
}

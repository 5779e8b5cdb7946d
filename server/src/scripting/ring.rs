//! Scripts on a cluster node (docs/scripting.md, "Cluster mode").
//!
//! A script names its keys in KEYS. On a ring, a script that names one key (any number
//! of times) runs as the change function of that key's consensus round
//! (`cluster_mode::consensus`); one that names several keys of one slot runs as one
//! ring transaction over them (`cluster_mode::transaction`; CROSSSLOT when they are in
//! different slots, as on Redis Cluster). Either way it is linearizable with every other
//! write of its keys, whichever node each client reached. A script with no key runs on
//! the node reached, as on Redis Cluster, and may call no command that names a key.
//! Inside a script, every command must stay on the declared keys (and the script's
//! database) and be one the ring can run from a command's code.

use crate::cluster_mode::route::{route, Route};
use crate::commands::table::{self, CommandSpec};
use crate::commands::Ctx;
use crate::keyspace::txn::RingReads;
use crate::keyspace::Txn;
use crate::protocol::Reply;
use crate::scripting::eval::numkeys;
use crate::state::{Client, Shared};
use bytes::Bytes;
use parking_lot::MutexGuard;
use std::time::Duration;

/// How long a script waits for the node's running script before it looks again whether
/// that one has run past busy-reply-threshold (then it gets -BUSY, as other commands do).
const TURN_POLL: Duration = Duration::from_millis(20);

/// What a script on a ring may touch: the keys it declared, in the database it started in.
#[derive(Debug, Clone)]
pub struct RingScope {
    /// The script's database (SELECT inside a script cannot leave it on a ring).
    pub db: usize,
    /// KEYS.
    pub keys: Vec<Bytes>,
}

/// The keys a script run declares.
#[derive(Debug, PartialEq, Eq)]
pub enum DeclaredKeys {
    /// No key (or numkeys is malformed: the command itself then answers its error).
    None,
    /// One key, perhaps named several times.
    One(Bytes),
    /// Several distinct keys.
    Several,
}

/// The keys of EVAL-style arguments (`name numkeys key... arg...`), as declared
/// (repeats included); none when numkeys is malformed (the command itself then answers
/// its error).
pub fn key_arguments(args: &[Bytes]) -> &[Bytes] {
    let Some(n) = (args.len() >= 3)
        .then(|| numkeys(args, "ERR value is not an integer or out of range").ok())
        .flatten()
    else {
        return &[];
    };
    &args[3..3 + n]
}

/// The keys of EVAL-style arguments (`name numkeys key... arg...`).
pub fn declared_keys(args: &[Bytes]) -> DeclaredKeys {
    let keys = key_arguments(args);
    match keys.first() {
        None => DeclaredKeys::None,
        Some(first) if keys.iter().all(|k| k == first) => DeclaredKeys::One(first.clone()),
        Some(_) => DeclaredKeys::Several,
    }
}

/// Why a script on a ring may not run `argv` (resolved to `spec`) while its client is
/// in database `db`; `None` if it may.
pub fn refusal(scope: &RingScope, db: usize, spec: &CommandSpec, argv: &[Bytes]) -> Option<String> {
    if let Some(k) = spec
        .keys(argv)
        .into_iter()
        .find(|k| db != scope.db || !scope.keys.contains(k))
    {
        return Some(format!(
            "-CROSSSLOT Script attempted to access key '{}', which it did not declare in KEYS \
             (or in another database): a script on a kvd cluster locks the keys it declares, \
             and only those",
            String::from_utf8_lossy(k)
        ));
    }
    let parent = table::lookup(&argv[0])
        .filter(|p| !p.subcommands.is_empty())
        .map(|p| p.name);
    match route(spec, parent, argv, true) {
        Route::Local | Route::Keys { .. } | Route::Consensus | Route::Transaction => None,
        Route::Refused(why) => Some(format!("-{why}")),
        _ => Some(format!(
            "This Redis command is not allowed from script on a kvd cluster: '{}' works on \
             the whole cluster, not on the script's key",
            spec.name
        )),
    }
}

/// The node's turn to run a script: one script at a time per node (the Lua states are
/// shared), or -BUSY once the running one has passed busy-reply-threshold.
pub fn turn<'s>(srv: &'s Shared, spec: &CommandSpec) -> Result<MutexGuard<'s, ()>, Reply> {
    loop {
        if let Some(guard) = srv.scripting.ring_turn.try_lock_for(TURN_POLL) {
            return Ok(guard);
        }
        if let Some(busy) = srv.scripting.busy.refusal(spec) {
            return Err(busy);
        }
    }
}

/// Runs `f` off the async worker when the runtime allows it: a script may run long (and
/// wait for its turn), and the node's other connections must go on being served (SCRIPT
/// KILL, -BUSY answers).
pub fn off_async_worker<R>(f: impl FnOnce() -> R) -> R {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// Runs a script that declares no key: on this node, against no key at all.
pub fn run_keyless(
    srv: &Shared,
    client: &mut Client,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Reply {
    let Some(handler) = spec.handler else {
        return Reply::error("ERR internal error: command without handler");
    };
    off_async_worker(|| {
        let _turn = match turn(srv, spec) {
            Ok(g) => g,
            Err(busy) => return busy,
        };
        let mut ctx = Ctx {
            srv,
            client,
            txn: Txn::on_ring(&srv.store, RingReads::default()),
        };
        let reply = handler(&mut ctx, args).unwrap_or_else(|e| e);
        if !ctx.txn.into_ring_writes().is_empty() {
            // Every keyed command is refused inside such a script: this is a bug.
            return Reply::error(
                "ERR internal error: a script without keys wrote a key; nothing was written",
            );
        }
        reply
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn a_script_declares_none_one_or_several_keys() {
        assert_eq!(
            declared_keys(&args(&["EVAL", "s", "0", "a"])),
            DeclaredKeys::None
        );
        assert_eq!(
            declared_keys(&args(&["EVAL", "s", "x"])),
            DeclaredKeys::None
        );
        assert_eq!(
            declared_keys(&args(&["EVAL", "s", "2", "k", "k", "arg"])),
            DeclaredKeys::One(Bytes::from("k"))
        );
        assert_eq!(
            declared_keys(&args(&["FCALL", "f", "2", "a", "b"])),
            DeclaredKeys::Several
        );
    }

    #[test]
    fn calls_must_stay_on_the_declared_key_and_database() {
        let scope = RingScope {
            db: 0,
            keys: vec![Bytes::from("k")],
        };
        let check = |db: usize, words: &[&str]| {
            let argv = args(words);
            let spec = crate::commands::resolve(&argv).expect("known command");
            refusal(&scope, db, spec, &argv)
        };
        assert_eq!(check(0, &["INCR", "k"]), None);
        assert_eq!(check(0, &["GET", "k"]), None);
        assert_eq!(check(0, &["PING"]), None);
        assert!(check(0, &["GET", "other"]).is_some_and(|e| e.starts_with("-CROSSSLOT")));
        assert!(check(1, &["GET", "k"]).is_some_and(|e| e.starts_with("-CROSSSLOT")));
        assert!(check(0, &["DBSIZE"]).is_some_and(|e| e.contains("whole cluster")));
        assert!(check(0, &["FLUSHALL"]).is_some());
    }
}

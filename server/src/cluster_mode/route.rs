//! Which path a command takes on a cluster node (docs/cluster.md, "Commands on the ring";
//! docs/consistency.md for the two kinds of database).
//!
//! Commands that only read keys run their ordinary single-node code against the ring:
//! the keys they name are read from their replicas first (quorum R). Commands that write
//! depend on the database. In a linearizable database (the default) every write, plain
//! or conditional, runs through single-key consensus, with the command's code as the
//! change function. In an eventual database (`cluster-eventual-databases`) blind writes
//! are last-writer-wins, replicated at quorum W, and commands that read before they write
//! are refused: under last-writer-wins two clients incrementing one key through two
//! nodes would both read 5 and both write 6. Commands about the connection or the server
//! run locally.

use super::consensus;
use crate::commands::table::{CommandSpec, GLOBAL, KEYSPACE, READONLY, WRITE};
use bytes::Bytes;

/// The path of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Runs on this node only (connection, server, introspection).
    Local,
    /// Reads its keys from the ring, runs, and replicates its writes. `prefetch` is
    /// false for blind writes, which read nothing.
    Keys {
        /// Whether the command reads its keys first.
        prefetch: bool,
    },
    /// A whole-database command with its own ring implementation (SCAN, KEYS, DBSIZE).
    Keyspace,
    /// CLUSTER REPAIR: waits for anti-entropy rounds.
    Repair,
    /// CLUSTER MERKLE: this node's Merkle roots (reads the engine).
    Merkle,
    /// CLUSTER LAYOUT: layout administration (stages, plans and commits layout changes).
    Layout,
    /// FLUSHDB / FLUSHALL: a versioned flush entry per database, on every node.
    Flush,
    /// ACL SETUSER / DELUSER / LOAD and CONFIG SET: run here, then what they changed
    /// travels to every node as cluster metadata.
    Metadata,
    /// Runs through single-key consensus (each key of MSET/DEL/UNLINK in its own round).
    Consensus,
    /// Reads and writes several keys of one slot: one ring transaction
    /// (super::transaction).
    Transaction,
    /// EXEC: the queued commands as one ring transaction.
    Exec,
    /// WATCH: remembers the keys' versions for EXEC.
    Watch,
    /// IDEMPOTENT: the wrapped command through its key's consensus, the reply kept in
    /// the key's record (super::idempotent).
    Idempotent,
    /// PUBLISH / SPUBLISH: delivered here, then sent to every other node.
    Publish,
    /// A siblings database's GET/SET or SIBGET/SIBSET/SIBDEL (super::siblings).
    Siblings,
    /// Not available on the ring; the text says why.
    Refused(String),
}

/// CLIENT TRACKING on a cluster node, until invalidations travel between nodes.
const TRACKING_REFUSED: &str = "ERR CLIENT TRACKING is not available in cluster mode: a \
     write, repair or expiry on another node does not invalidate this node's tracking \
     clients yet, so their caches could serve stale values; see docs/pubsub.md";

/// Reads that run unchanged on the ring.
const RING_READS: &[&str] = &[
    "get",
    "mget",
    "exists",
    "touch",
    "ttl",
    "pttl",
    "expiretime",
    "pexpiretime",
    "type",
    "strlen",
    "getrange",
    "substr",
    "getbit",
    "bitcount",
    "bitpos",
    "lcs",
    "digest",
    "getwithetag",
    "getifnotmatch",
    "dump",
    "bitfield_ro",
    "sort_ro",
];

/// Subcommands that only read the key they name (OBJECT ENCODING key, ...).
const RING_READ_SUBCOMMANDS: &[(&str, &str)] = &[
    ("object", "encoding"),
    ("object", "freq"),
    ("object", "idletime"),
    ("object", "refcount"),
];

/// Writes whose result does not depend on the current value.
const BLIND_WRITES: &[&str] = &["set", "setex", "psetex", "mset"];

/// Deletes: the tombstone is blind; the reply (how many existed) comes from the read.
const DELETES: &[&str] = &["del", "unlink"];

/// SET options that make it read the current value first.
const SET_READING_OPTIONS: &[&str] = &[
    "nx", "xx", "get", "keepttl", "ifeq", "ifne", "ifdeq", "ifdne", "withetag",
];

/// Commands that write keys but cannot run through consensus yet, with why.
fn not_on_consensus(name: &str) -> Option<&'static str> {
    match name {
        "swapdb" | "move" => Some("it changes two databases at once"),
        _ => None,
    }
}

/// Where `args` (resolved to `spec`) runs on a cluster node whose client has selected a
/// `linearizable` database or an eventual one.
pub fn route(
    spec: &CommandSpec,
    parent: Option<&str>,
    args: &[Bytes],
    linearizable: bool,
) -> Route {
    let name = spec.name;
    if let Some(r) = script_route(name, parent, linearizable) {
        return r;
    }
    // Subscriptions and PUBSUB belong to this node's connections; what is published
    // through any node reaches them (docs/pubsub.md, "Cluster mode").
    if spec.group == "pubsub" {
        return match name {
            "publish" | "spublish" if parent.is_none() => Route::Publish,
            _ => Route::Local,
        };
    }
    if parent == Some("client") && name == "tracking" {
        return Route::Refused(TRACKING_REFUSED.into());
    }
    if parent == Some("cluster") {
        return match name {
            "repair" => Route::Repair,
            "merkle" => Route::Merkle,
            "layout" => Route::Layout,
            _ => Route::Local,
        };
    }
    let cluster_wide = match parent {
        Some("acl") => matches!(name, "setuser" | "deluser" | "load"),
        Some("config") => name == "set",
        _ => false,
    };
    if cluster_wide {
        return Route::Metadata;
    }
    if let Some(p) = parent {
        if RING_READ_SUBCOMMANDS.contains(&(p, name)) {
            return Route::Keys { prefetch: true };
        }
        return Route::Local; // CLIENT, CONFIG GET, ACL LIST, ... subcommands
    }
    if RING_READS.contains(&name) {
        return Route::Keys { prefetch: true };
    }
    if matches!(name, "flushdb" | "flushall") {
        return Route::Flush;
    }
    if matches!(name, "scan" | "keys" | "dbsize") {
        return Route::Keyspace;
    }
    if name == "idempotent" {
        return match linearizable {
            true => Route::Idempotent,
            false => refused(name, EVENTUAL_IDEMPOTENT),
        };
    }
    let touches_data = spec.first_key > 0 || spec.has(WRITE | READONLY | KEYSPACE | GLOBAL);
    let transaction = matches!(name, "multi" | "exec" | "watch" | "unwatch" | "discard");
    if !touches_data && !transaction {
        return Route::Local;
    }
    if linearizable {
        if let Some(why) = not_on_consensus(name) {
            return refused(name, why);
        }
        match name {
            "exec" => return Route::Exec,
            "watch" => return Route::Watch,
            // They only change the connection's state.
            "multi" | "discard" | "unwatch" => return Route::Local,
            _ => {}
        }
        let mut keys: Vec<&Bytes> = spec.keys(args);
        keys.sort();
        keys.dedup();
        if spec.has(WRITE) && !keys.is_empty() {
            if consensus::runs_per_key(name, keys.len()) {
                return Route::Consensus;
            }
            return Route::Transaction;
        }
        return refused(name, "it has no ring implementation");
    }
    if DELETES.contains(&name) {
        return Route::Keys { prefetch: true };
    }
    let reading_option = (name == "set")
        .then(|| {
            args.get(3..).unwrap_or(&[]).iter().find(|a| {
                SET_READING_OPTIONS
                    .iter()
                    .any(|o| a.eq_ignore_ascii_case(o.as_bytes()))
            })
        })
        .flatten();
    if let Some(opt) = reading_option {
        let what = format!(
            "set with {}",
            String::from_utf8_lossy(opt).to_ascii_uppercase()
        );
        return refused(&what, EVENTUAL);
    }
    if BLIND_WRITES.contains(&name) {
        return Route::Keys { prefetch: false };
    }
    refused(name, EVENTUAL)
}

/// Commands that run a script or a function.
pub const SCRIPT_RUNS: &[&str] = &[
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
];

/// Scripts and functions on a cluster node (docs/scripting.md, "Cluster mode"): a script
/// runs as the change function of its one key's consensus round (read-only ones too:
/// what they read is then linearizable); FUNCTION LOAD/DELETE/FLUSH/RESTORE travel to
/// every node as cluster metadata; SCRIPT and the other FUNCTION subcommands are this
/// node's own (its script cache, its running script), as on Redis Cluster.
fn script_route(name: &str, parent: Option<&str>, linearizable: bool) -> Option<Route> {
    match parent {
        Some("script") => Some(Route::Local),
        Some("function") if matches!(name, "load" | "delete" | "flush" | "restore") => {
            Some(Route::Metadata)
        }
        Some("function") => Some(Route::Local),
        None if SCRIPT_RUNS.contains(&name) && linearizable => Some(Route::Consensus),
        None if SCRIPT_RUNS.contains(&name) => Some(refused(name, EVENTUAL)),
        _ => None,
    }
}

/// Why a command that reads before writing is refused in an eventual database.
const EVENTUAL: &str = "this database is eventual (cluster-eventual-databases): its plain \
     writes are last-writer-wins, and a command that reads a key before writing it could \
     lose updates there; use a linearizable database";

/// Why IDEMPOTENT is refused in an eventual database.
const EVENTUAL_IDEMPOTENT: &str = "this database is eventual (cluster-eventual-databases): \
     its writes are last-writer-wins with no single order of a key's writes, so there is \
     no one record a retry would surely find the first reply in; use a linearizable \
     database";

fn refused(what: &str, why: &str) -> Route {
    Route::Refused(format!(
        "ERR '{what}' is not available in cluster mode: {why} (docs/consistency.md)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::resolve;

    fn route_in(words: &[&str], linearizable: bool) -> Route {
        let args: Vec<Bytes> = words.iter().map(|w| Bytes::from(w.to_string())).collect();
        let spec = resolve(&args).expect("known command");
        let parent = crate::commands::table::lookup(&args[0])
            .filter(|p| !p.subcommands.is_empty())
            .map(|p| p.name);
        route(spec, parent, &args, linearizable)
    }

    fn route_of(words: &[&str]) -> Route {
        route_in(words, true)
    }

    fn eventual(words: &[&str]) -> Route {
        route_in(words, false)
    }

    #[test]
    fn reads_run_on_the_ring_in_both_kinds_of_database() {
        for lin in [true, false] {
            assert_eq!(route_in(&["GET", "k"], lin), Route::Keys { prefetch: true });
            assert_eq!(
                route_in(&["MGET", "a", "b"], lin),
                Route::Keys { prefetch: true }
            );
            assert_eq!(route_in(&["SCAN", "0"], lin), Route::Keyspace);
            assert_eq!(
                route_in(&["DUMP", "k"], lin),
                Route::Keys { prefetch: true }
            );
            assert_eq!(
                route_in(&["OBJECT", "ENCODING", "k"], lin),
                Route::Keys { prefetch: true }
            );
            assert_eq!(
                route_in(&["BITFIELD_RO", "k", "GET", "u8", "0"], lin),
                Route::Keys { prefetch: true }
            );
        }
    }

    #[test]
    fn every_write_of_a_linearizable_database_runs_through_consensus() {
        for cmd in [
            &["SET", "k", "v"][..],
            &["SET", "k", "v", "NX"],
            &["SET", "k", "v", "GET"],
            &["INCR", "k"],
            &["GETSET", "k", "v"],
            &["EXPIRE", "k", "10"],
            &["APPEND", "k", "v"],
            &["DEL", "a", "b"],
            &["MSET", "a", "1", "b", "2"],
            &["LOCK", "k", "owner", "1000"],
            &["LOCK", "k", "owner", "1000", "WAIT", "10"],
            &["SETIFMATCH", "k", "v", "1"],
        ] {
            assert_eq!(route_of(cmd), Route::Consensus, "{cmd:?}");
        }
    }

    #[test]
    fn multi_key_work_runs_as_a_transaction_and_two_databases_are_refused() {
        for cmd in [
            &["MSETNX", "a", "1", "b", "2"][..],
            &["RENAME", "a", "b"],
            &["COPY", "a", "b"],
        ] {
            assert_eq!(route_of(cmd), Route::Transaction, "{cmd:?}");
        }
        assert_eq!(route_of(&["EXEC"]), Route::Exec);
        assert_eq!(route_of(&["WATCH", "k"]), Route::Watch);
        for cmd in [&["MULTI"][..], &["DISCARD"], &["UNWATCH"]] {
            assert_eq!(route_of(cmd), Route::Local, "{cmd:?}");
        }
        for cmd in [&["SWAPDB", "0", "1"][..], &["MOVE", "k", "1"]] {
            match route_of(cmd) {
                Route::Refused(why) => assert!(why.contains("consistency.md"), "{why}"),
                other => panic!("{cmd:?} took {other:?}"),
            }
        }
        for cmd in [
            &["MULTI"][..],
            &["EXEC"],
            &["WATCH", "k"],
            &["RENAME", "a", "b"],
        ] {
            match eventual(cmd) {
                Route::Refused(why) => assert!(why.contains("eventual"), "{why}"),
                other => panic!("{cmd:?} took {other:?} in an eventual database"),
            }
        }
    }

    #[test]
    fn an_eventual_database_writes_blindly_and_refuses_read_modify_write() {
        assert_eq!(
            eventual(&["SET", "k", "v"]),
            Route::Keys { prefetch: false }
        );
        assert_eq!(
            eventual(&["SET", "k", "v", "EX", "10"]),
            Route::Keys { prefetch: false }
        );
        assert_eq!(
            eventual(&["MSET", "a", "1"]),
            Route::Keys { prefetch: false }
        );
        assert_eq!(eventual(&["DEL", "a", "b"]), Route::Keys { prefetch: true });
        for cmd in [
            &["INCR", "k"][..],
            &["SET", "k", "v", "NX"],
            &["SET", "k", "v", "keepttl"],
            &["GETSET", "k", "v"],
            &["LOCK", "k", "owner", "1000"],
            &["BITOP", "AND", "d", "a", "b"],
            &["BITFIELD", "k", "INCRBY", "u8", "0", "1"],
            &["RESTORE", "k", "0", "payload"],
        ] {
            match eventual(cmd) {
                Route::Refused(why) => assert!(why.contains("eventual"), "{why}"),
                other => panic!("{cmd:?} took {other:?}"),
            }
        }
    }

    #[test]
    fn idempotent_runs_in_linearizable_databases_and_is_refused_in_eventual_ones() {
        let cmd = ["IDEMPOTENT", "req", "INCR", "k"];
        assert_eq!(route_of(&cmd), Route::Idempotent);
        match eventual(&cmd) {
            Route::Refused(why) => assert!(why.contains("no single order"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scripts_run_through_consensus_and_function_changes_travel_as_metadata() {
        for cmd in [
            &["EVAL", "return 1", "0"][..],
            &["EVALSHA", "abc", "1", "k"],
            &["EVAL_RO", "return 1", "0"],
            &["FCALL", "f", "1", "k"],
            &["FCALL_RO", "f", "0"],
        ] {
            assert_eq!(route_of(cmd), Route::Consensus, "{cmd:?}");
            match eventual(cmd) {
                Route::Refused(why) => assert!(why.contains("eventual"), "{why}"),
                other => panic!("{cmd:?} took {other:?} in an eventual database"),
            }
        }
        for cmd in [
            &["FUNCTION", "LOAD", "code"][..],
            &["FUNCTION", "DELETE", "lib"],
            &["FUNCTION", "FLUSH"],
            &["FUNCTION", "RESTORE", "payload"],
        ] {
            assert_eq!(route_of(cmd), Route::Metadata, "{cmd:?}");
        }
        for cmd in [
            &["SCRIPT", "LOAD", "return 1"][..],
            &["SCRIPT", "KILL"],
            &["FUNCTION", "LIST"],
            &["FUNCTION", "STATS"],
            &["FUNCTION", "DUMP"],
        ] {
            assert_eq!(route_of(cmd), Route::Local, "{cmd:?}");
        }
    }

    #[test]
    fn connection_and_server_commands_stay_local() {
        for cmd in [
            &["PING"][..],
            &["INFO"],
            &["CONFIG", "GET", "port"],
            &["CLIENT", "ID"],
            &["HELLO", "3"],
            &["CLUSTER", "INFO"],
        ] {
            assert_eq!(route_of(cmd), Route::Local, "{cmd:?}");
        }
        assert_eq!(route_of(&["CLUSTER", "REPAIR"]), Route::Repair);
        assert_eq!(route_of(&["CLUSTER", "LAYOUT", "SHOW"]), Route::Layout);
    }

    #[test]
    fn publishes_go_to_every_node_and_subscriptions_stay_local() {
        for lin in [true, false] {
            assert_eq!(route_in(&["PUBLISH", "c", "m"], lin), Route::Publish);
            assert_eq!(route_in(&["SPUBLISH", "c", "m"], lin), Route::Publish);
            for cmd in [
                &["SUBSCRIBE", "c"][..],
                &["PSUBSCRIBE", "c*"],
                &["SSUBSCRIBE", "c"],
                &["UNSUBSCRIBE"],
                &["PUNSUBSCRIBE", "c*"],
                &["SUNSUBSCRIBE", "c"],
                &["PUBSUB", "NUMPAT"],
                &["PUBSUB", "SHARDNUMSUB", "c"],
            ] {
                assert_eq!(route_in(cmd, lin), Route::Local, "{cmd:?}");
            }
        }
    }

    #[test]
    fn client_tracking_is_refused_with_why() {
        match route_of(&["CLIENT", "TRACKING", "on"]) {
            Route::Refused(why) => {
                assert!(why.contains("stale values"), "{why}");
                assert!(why.starts_with("ERR CLIENT TRACKING"), "{why}");
            }
            other => panic!("CLIENT TRACKING took {other:?}"),
        }
        assert_eq!(
            route_of(&["CLIENT", "TRACKING", "off"]),
            Route::Refused(TRACKING_REFUSED.into())
        );
    }

    #[test]
    fn cluster_wide_changes_go_through_the_metadata() {
        assert_eq!(route_of(&["FLUSHALL"]), Route::Flush);
        assert_eq!(route_of(&["FLUSHDB", "ASYNC"]), Route::Flush);
        for cmd in [
            &["ACL", "SETUSER", "u", "on"][..],
            &["ACL", "DELUSER", "u"],
            &["ACL", "LOAD"],
            &["CONFIG", "SET", "maxmemory", "1"],
        ] {
            assert_eq!(route_of(cmd), Route::Metadata, "{cmd:?}");
        }
        assert_eq!(route_of(&["ACL", "LIST"]), Route::Local);
        assert_eq!(route_of(&["CONFIG", "GET", "*"]), Route::Local);
    }
}

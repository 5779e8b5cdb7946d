//! Which path a command takes on a cluster node (docs/cluster.md, "Commands on the ring").
//!
//! Commands that only read keys, or write them blindly (the new value does not depend on
//! the old), run their ordinary single-node code against the ring: the keys they name are
//! read from their replicas first (quorum R), and their writes are replicated after
//! (quorum W). Commands that read before they write would lose updates under
//! last-writer-wins when two clients race through two nodes, so they are refused until
//! they run through single-key consensus. Commands about the connection or the server
//! run locally.

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
    /// FLUSHDB / FLUSHALL: a versioned flush entry per database, on every node.
    Flush,
    /// ACL SETUSER / DELUSER / LOAD and CONFIG SET: run here, then what they changed
    /// travels to every node as cluster metadata.
    Metadata,
    /// Not available on the ring; the text says why.
    Refused(String),
}

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
];

/// Writes whose result does not depend on the current value.
const BLIND_WRITES: &[&str] = &["set", "setex", "psetex", "mset"];

/// Deletes: the tombstone is blind; the reply (how many existed) comes from the read.
const DELETES: &[&str] = &["del", "unlink"];

/// SET options that make it read the current value first.
const SET_READING_OPTIONS: &[&str] = &[
    "nx", "xx", "get", "keepttl", "ifeq", "ifne", "ifdeq", "ifdne", "withetag",
];

/// Where `args` (resolved to `spec`) runs on a cluster node.
pub fn route(spec: &CommandSpec, parent: Option<&str>, args: &[Bytes]) -> Route {
    let name = spec.name;
    let delivers = matches!(
        name,
        "subscribe" | "psubscribe" | "ssubscribe" | "publish" | "spublish"
    );
    if (parent.is_none() && delivers) || (parent == Some("client") && name == "tracking") {
        return Route::Refused(format!(
            "ERR '{name}' is not available in cluster mode yet: messages and cache \
             invalidations are not delivered across nodes; see docs/pubsub.md"
        ));
    }
    if parent == Some("cluster") {
        return match name {
            "repair" => Route::Repair,
            "merkle" => Route::Merkle,
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
    if parent.is_some() {
        return Route::Local; // CLIENT, CONFIG GET, ACL LIST, ... subcommands
    }
    if RING_READS.contains(&name) || DELETES.contains(&name) {
        return Route::Keys { prefetch: true };
    }
    if name == "set" {
        if let Some(opt) = args.get(3..).unwrap_or(&[]).iter().find(|a| {
            SET_READING_OPTIONS
                .iter()
                .any(|o| a.eq_ignore_ascii_case(o.as_bytes()))
        }) {
            return refused(&format!(
                "set with {}",
                String::from_utf8_lossy(opt).to_ascii_uppercase()
            ));
        }
    }
    if BLIND_WRITES.contains(&name) {
        return Route::Keys { prefetch: false };
    }
    if matches!(name, "flushdb" | "flushall") {
        return Route::Flush;
    }
    if matches!(name, "scan" | "keys" | "dbsize") {
        return Route::Keyspace;
    }
    let touches_data = spec.first_key > 0 || spec.has(WRITE | READONLY | KEYSPACE | GLOBAL);
    if touches_data || matches!(name, "multi" | "exec" | "watch" | "unwatch" | "discard") {
        return refused(name);
    }
    Route::Local
}

fn refused(what: &str) -> Route {
    Route::Refused(format!(
        "ERR '{what}' is not available in cluster mode yet: it reads a key before writing it \
         (or changes whole databases), and on a ring that needs single-key consensus so that \
         no update is lost; see docs/cluster.md"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::resolve;

    fn route_of(words: &[&str]) -> Route {
        let args: Vec<Bytes> = words.iter().map(|w| Bytes::from(w.to_string())).collect();
        let spec = resolve(&args).expect("known command");
        let parent = crate::commands::table::lookup(&args[0])
            .filter(|p| !p.subcommands.is_empty())
            .map(|p| p.name);
        route(spec, parent, &args)
    }

    #[test]
    fn reads_and_blind_writes_run_on_the_ring() {
        assert_eq!(route_of(&["GET", "k"]), Route::Keys { prefetch: true });
        assert_eq!(
            route_of(&["MGET", "a", "b"]),
            Route::Keys { prefetch: true }
        );
        assert_eq!(route_of(&["DEL", "a", "b"]), Route::Keys { prefetch: true });
        assert_eq!(
            route_of(&["SET", "k", "v"]),
            Route::Keys { prefetch: false }
        );
        assert_eq!(
            route_of(&["SET", "k", "v", "EX", "10"]),
            Route::Keys { prefetch: false }
        );
        assert_eq!(
            route_of(&["MSET", "a", "1"]),
            Route::Keys { prefetch: false }
        );
        assert_eq!(route_of(&["SCAN", "0"]), Route::Keyspace);
    }

    #[test]
    fn read_modify_write_is_refused_with_a_reason() {
        for cmd in [
            &["INCR", "k"][..],
            &["SET", "k", "v", "NX"],
            &["SET", "k", "v", "keepttl"],
            &["GETSET", "k", "v"],
            &["EXPIRE", "k", "10"],
            &["APPEND", "k", "v"],
            &["SWAPDB", "0", "1"],
            &["MULTI"],
            &["WATCH", "k"],
            &["LOCK", "k", "owner", "1000"],
        ] {
            match route_of(cmd) {
                Route::Refused(why) => assert!(why.contains("consensus"), "{why}"),
                other => panic!("{cmd:?} took {other:?}"),
            }
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
    }

    #[test]
    fn pubsub_and_tracking_are_refused_until_delivered_across_nodes() {
        for cmd in [
            &["SUBSCRIBE", "c"][..],
            &["PSUBSCRIBE", "c*"],
            &["SSUBSCRIBE", "c"],
            &["PUBLISH", "c", "m"],
            &["SPUBLISH", "c", "m"],
            &["CLIENT", "TRACKING", "on"],
        ] {
            match route_of(cmd) {
                Route::Refused(why) => assert!(why.contains("across nodes"), "{why}"),
                other => panic!("{cmd:?} took {other:?}"),
            }
        }
        assert_eq!(route_of(&["PUBSUB", "NUMPAT"]), Route::Local);
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

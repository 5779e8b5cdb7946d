//! The command table: the one description of every command (name, arity, flags, key
//! positions, group, summary, since) that dispatch, arity errors, COMMAND, COMMAND INFO,
//! DOCS, COUNT, LIST and GETKEYS all read — like Redis's `commands/*.json`. ACL categories
//! are derived from it too (`crate::acl::categories`).

use super::table_hash::TableHash;
use super::{
    acl, admin, bits, cluster, cluster_compat, connection, idempotent, keys, locks, pubsub, server,
    strings, tracking, transactions, versions,
};
use super::{bitfield, bitop, dump, object, replication, siblings, sort};
use super::{CmdResult, Ctx};
use crate::scripting::{eval, function, script};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A command implementation.
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CmdResult;

/// Modifies data.
pub const WRITE: u32 = 1;
/// Only reads data.
pub const READONLY: u32 = 1 << 1;
/// May grow memory.
pub const DENYOOM: u32 = 1 << 2;
/// Administrative.
pub const ADMIN: u32 = 1 << 3;
/// Not from scripts.
pub const NOSCRIPT: u32 = 1 << 5;
/// May block the client.
pub const BLOCKING: u32 = 1 << 6;
/// Allowed while loading.
pub const LOADING: u32 = 1 << 7;
/// Allowed on stale replicas.
pub const STALE: u32 = 1 << 8;
/// Not shown by MONITOR.
pub const SKIP_MONITOR: u32 = 1 << 9;
/// Not recorded in the slow log.
pub const SKIP_SLOWLOG: u32 = 1 << 10;
/// O(1) or O(log N).
pub const FAST: u32 = 1 << 12;
/// Allowed before AUTH.
pub const NO_AUTH: u32 = 1 << 13;
/// Not allowed inside MULTI.
pub const NO_MULTI: u32 = 1 << 15;
/// Allowed while busy.
pub const ALLOW_BUSY: u32 = 1 << 16;
/// kvd: changes whole databases, runs alone (exclusive world lock). Not shown.
pub const GLOBAL: u32 = 1 << 20;
/// kvd: iterates a whole database, reads from a snapshot. Not shown.
pub const KEYSPACE: u32 = 1 << 21;

const FLAG_NAMES: &[(u32, &str)] = &[
    (WRITE, "write"),
    (READONLY, "readonly"),
    (DENYOOM, "denyoom"),
    (ADMIN, "admin"),
    (NOSCRIPT, "noscript"),
    (BLOCKING, "blocking"),
    (LOADING, "loading"),
    (STALE, "stale"),
    (SKIP_MONITOR, "skip_monitor"),
    (SKIP_SLOWLOG, "skip_slowlog"),
    (FAST, "fast"),
    (NO_AUTH, "no_auth"),
    (NO_MULTI, "no_multi"),
    (ALLOW_BUSY, "allow_busy"),
];

/// One command (or subcommand) of the table.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name (subcommands: the part after `|`).
    pub name: &'static str,
    /// Redis arity: N = exactly N args including the name, -N = at least N.
    pub arity: i32,
    /// Flag bits.
    pub flags: u32,
    /// Position of the first key (0 = no keys).
    pub first_key: i32,
    /// Position of the last key (negative counts from the end).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// Command group (COMMAND DOCS).
    pub group: &'static str,
    /// Version that introduced it (Redis's, or kvd's for extensions).
    pub since: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Implementation (None for containers, which dispatch to subcommands).
    pub handler: Option<Handler>,
    /// Subcommands of a container (CLIENT, CONFIG, ...).
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    /// Flag names as COMMAND INFO lists them.
    pub fn flag_names(&self) -> Vec<&'static str> {
        FLAG_NAMES
            .iter()
            .filter(|(b, _)| self.flags & b != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    /// True if any of `bits` is set.
    pub fn has(&self, bits: u32) -> bool {
        self.flags & bits != 0
    }

    /// Key arguments of `args` by first/last/step.
    pub fn keys<'a>(&self, args: &'a [Bytes]) -> Vec<&'a Bytes> {
        self.key_args(args).collect()
    }

    /// Key arguments of `args` by first/last/step, without collecting them: the hot path
    /// (grouping a pipeline, the ACL check) only walks or counts them.
    pub fn key_args<'a>(&self, args: &'a [Bytes]) -> impl Iterator<Item = &'a Bytes> + Clone {
        let argc = args.len() as i32;
        let (first, last) = if self.first_key <= 0 {
            (1, 0) // no keys
        } else if self.last_key < 0 {
            (self.first_key, argc + self.last_key)
        } else {
            (self.first_key, self.last_key)
        };
        let end = (last.min(argc - 1) + 1).max(0) as usize;
        args[..end.min(args.len())]
            .iter()
            .skip(first as usize)
            .step_by(self.step.max(1) as usize)
    }

    /// True if `argc` satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }
}

#[allow(clippy::too_many_arguments)] // one positional row per command keeps the table readable
const fn c(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group,
        since,
        summary,
        handler: Some(handler),
        subcommands: &[],
    }
}

const fn container(
    name: &'static str,
    arity: i32,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    subcommands: &'static [CommandSpec],
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        group,
        since,
        summary,
        handler: None,
        subcommands,
    }
}

const NK: (i32, i32, i32) = (0, 0, 0);
const K1: (i32, i32, i32) = (1, 1, 1);
const KALL: (i32, i32, i32) = (1, -1, 1);
const K12: (i32, i32, i32) = (1, 2, 1);
const CONN: u32 = NOSCRIPT | LOADING | STALE | FAST;
/// CLIENT ID/SETNAME/GETNAME/SETINFO/INFO: Redis 7 does not flag them fast (so @slow).
const CLIENT_SUB: u32 = NOSCRIPT | LOADING | STALE;

const CLIENT_SUBS: &[CommandSpec] = &[
    c(
        "id",
        2,
        CLIENT_SUB,
        NK,
        "connection",
        "5.0.0",
        "Returns the unique client ID of the connection.",
        connection::client_id,
    ),
    c(
        "setname",
        3,
        CLIENT_SUB,
        NK,
        "connection",
        "2.6.9",
        "Sets the connection name.",
        connection::client_setname,
    ),
    c(
        "getname",
        2,
        CLIENT_SUB,
        NK,
        "connection",
        "2.6.9",
        "Returns the name of the connection.",
        connection::client_getname,
    ),
    c(
        "setinfo",
        4,
        CLIENT_SUB,
        NK,
        "connection",
        "7.2.0",
        "Sets information specific to the client or connection.",
        connection::client_setinfo,
    ),
    c(
        "info",
        2,
        CLIENT_SUB,
        NK,
        "connection",
        "6.2.0",
        "Returns information about the connection.",
        connection::client_info,
    ),
    c(
        "list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "connection",
        "2.4.0",
        "Lists open connections.",
        connection::client_list,
    ),
    c(
        "kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "connection",
        "2.4.0",
        "Terminates open connections.",
        connection::client_kill,
    ),
    c(
        "help",
        2,
        LOADING | STALE,
        NK,
        "connection",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
        connection::client_help,
    ),
    c(
        "tracking",
        -3,
        CLIENT_SUB,
        NK,
        "connection",
        "6.0.0",
        "Controls server-assisted client-side caching for the connection.",
        tracking::client_tracking,
    ),
    c(
        "caching",
        3,
        CLIENT_SUB,
        NK,
        "connection",
        "6.0.0",
        "Instructs the server whether to track the keys in the next request.",
        tracking::client_caching,
    ),
    c(
        "getredir",
        2,
        CLIENT_SUB,
        NK,
        "connection",
        "6.0.0",
        "Returns the client ID to which the connection's tracking notifications are redirected.",
        tracking::client_getredir,
    ),
    c(
        "trackinginfo",
        2,
        CLIENT_SUB,
        NK,
        "connection",
        "6.2.0",
        "Returns information about server-assisted client-side caching for the connection.",
        tracking::client_trackinginfo,
    ),
];

const CONFIG_SUBS: &[CommandSpec] = &[
    c(
        "get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "2.0.0",
        "Returns the effective values of configuration parameters.",
        server::config_get,
    ),
    c(
        "set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "2.0.0",
        "Sets configuration parameters in-flight.",
        server::config_set,
    ),
    c(
        "resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "2.0.0",
        "Resets the server's statistics.",
        server::config_resetstat,
    ),
    c(
        "rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "2.8.0",
        "Persists the effective configuration to file (not supported: replies with an error).",
        server::config_rewrite,
    ),
    c(
        "help",
        2,
        LOADING | STALE,
        NK,
        "server",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
        server::config_help,
    ),
];

const COMMAND_SUBS: &[CommandSpec] = &[
    c(
        "count",
        2,
        LOADING | STALE,
        NK,
        "server",
        "2.8.13",
        "Returns a count of commands.",
        server::command_count,
    ),
    c(
        "info",
        -2,
        LOADING | STALE,
        NK,
        "server",
        "2.8.13",
        "Returns information about one, multiple or all commands.",
        server::command_info,
    ),
    c(
        "docs",
        -2,
        LOADING | STALE,
        NK,
        "server",
        "7.0.0",
        "Returns documentary information about one, multiple or all commands.",
        server::command_docs,
    ),
    c(
        "list",
        -2,
        LOADING | STALE,
        NK,
        "server",
        "7.0.0",
        "Returns a list of command names.",
        server::command_list,
    ),
    c(
        "getkeys",
        -3,
        LOADING | STALE,
        NK,
        "server",
        "2.8.13",
        "Extracts the key names from an arbitrary command.",
        server::command_getkeys,
    ),
    c(
        "help",
        2,
        LOADING | STALE,
        NK,
        "server",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
        server::command_help,
    ),
];

/// CLUSTER subcommands (kvd's ring; Redis's names where they exist).
const CLUSTER_SUBS: &[CommandSpec] = &[
    c(
        "info",
        2,
        NOSCRIPT | LOADING | STALE,
        NK,
        "cluster",
        "3.0.0",
        "Returns information about the state of a node.",
        cluster::cluster_info,
    ),
    c(
        "nodes",
        2,
        NOSCRIPT | LOADING | STALE,
        NK,
        "cluster",
        "3.0.0",
        "Returns the cluster configuration for a node.",
        cluster::cluster_nodes,
    ),
    c(
        "myid",
        2,
        NOSCRIPT | LOADING | STALE,
        NK,
        "cluster",
        "3.0.0",
        "Returns the ID of a node.",
        cluster::cluster_myid,
    ),
    c(
        "keyslot",
        3,
        NOSCRIPT | LOADING | STALE,
        NK,
        "cluster",
        "3.0.0",
        "Returns the hash slot for a key.",
        cluster::cluster_keyslot,
    ),
    c(
        "preflist",
        3,
        NOSCRIPT | LOADING | STALE,
        NK,
        "cluster",
        "kvd",
        "Returns the replicas of a key in preference order.",
        cluster::cluster_preflist,
    ),
    c(
        "repair",
        -2,
        ADMIN | NOSCRIPT | STALE,
        NK,
        "cluster",
        "kvd",
        "Runs anti-entropy now for one partition or all of this node's.",
        cluster::cluster_ring_only,
    ),
    c(
        "merkle",
        2,
        NOSCRIPT | LOADING | STALE,
        NK,
        "cluster",
        "kvd",
        "Returns this node's Merkle root of every partition.",
        cluster::cluster_ring_only,
    ),
    c(
        "slots",
        2,
        NOSCRIPT | LOADING | STALE,
        NK,
        "cluster",
        "3.0.0",
        "Returns the mapping of cluster slots to nodes (kvd: only with cluster-compat yes).",
        cluster_compat::cluster_slots,
    ),
    c(
        "shards",
        2,
        NOSCRIPT | LOADING | STALE,
        NK,
        "cluster",
        "7.0.0",
        "Returns the mapping of cluster slots to shards (kvd: only with cluster-compat yes).",
        cluster_compat::cluster_shards,
    ),
    c(
        "layout",
        -3,
        ADMIN | NOSCRIPT | STALE,
        NK,
        "cluster",
        "kvd",
        "Shows the layout, stages changes (ASSIGN, REMOVE, REPLACE, REVERT), PLANs and APPLYs them.",
        cluster::cluster_ring_only,
    ),
    c(
        "consistency",
        -2,
        NOSCRIPT | LOADING | STALE | FAST,
        NK,
        "cluster",
        "kvd",
        "Sets or returns how many replicas this connection's requests wait for.",
        cluster::cluster_consistency,
    ),
];

const SLOWLOG_SUBS: &[CommandSpec] = &[
    c(
        "get",
        -2,
        ADMIN | LOADING | STALE,
        NK,
        "server",
        "2.2.12",
        "Returns the slow log's entries.",
        server::slowlog_get,
    ),
    c(
        "len",
        2,
        ADMIN | LOADING | STALE,
        NK,
        "server",
        "2.2.12",
        "Returns the number of entries in the slow log.",
        server::slowlog_len,
    ),
    c(
        "reset",
        2,
        ADMIN | LOADING | STALE,
        NK,
        "server",
        "2.2.12",
        "Clears all entries from the slow log.",
        server::slowlog_reset,
    ),
    c(
        "help",
        2,
        LOADING | STALE,
        NK,
        "server",
        "6.2.0",
        "Show helpful text about the different subcommands.",
        server::slowlog_help,
    ),
];

const ACL_SUBS: &[CommandSpec] = &[
    c(
        "cat",
        -2,
        NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Lists the ACL categories, or the commands inside a category.",
        acl::cat,
    ),
    c(
        "deluser",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Deletes ACL users, and terminates their connections.",
        acl::deluser,
    ),
    c(
        "dryrun",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "7.0.0",
        "Simulates the execution of a command by a user, without executing the command.",
        acl::dryrun,
    ),
    c(
        "genpass",
        -2,
        NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Generates a pseudorandom, secure password that can be used to identify ACL users.",
        acl::genpass,
    ),
    c(
        "getuser",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Lists the ACL rules of a user.",
        acl::getuser,
    ),
    c(
        "list",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Dumps the effective rules in ACL file format.",
        acl::list,
    ),
    c(
        "load",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Reloads the rules from the configured ACL file.",
        acl::load,
    ),
    c(
        "log",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Lists recent security events generated due to ACL rules.",
        acl::log,
    ),
    c(
        "save",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Saves the effective ACL rules in the configured ACL file.",
        acl::save,
    ),
    c(
        "setuser",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Creates and modifies an ACL user and its rules.",
        acl::setuser,
    ),
    c(
        "users",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Lists all ACL users.",
        acl::users,
    ),
    c(
        "whoami",
        2,
        NOSCRIPT | LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Returns the authenticated username of the current connection.",
        acl::whoami,
    ),
    c(
        "help",
        2,
        LOADING | STALE,
        NK,
        "server",
        "6.0.0",
        "Returns helpful text about the different subcommands.",
        acl::acl_help,
    ),
];

/// OBJECT subcommands (docs/compatibility.md).
const OBJECT_SUBS: &[CommandSpec] = &[
    c(
        "encoding",
        3,
        READONLY,
        (2, 2, 1),
        "generic",
        "2.2.3",
        "Returns the internal encoding of a Redis object.",
        object::encoding,
    ),
    c(
        "freq",
        3,
        READONLY,
        (2, 2, 1),
        "generic",
        "4.0.0",
        "Returns the logarithmic access frequency counter of a Redis object.",
        object::freq,
    ),
    c(
        "idletime",
        3,
        READONLY,
        (2, 2, 1),
        "generic",
        "2.2.3",
        "Returns the time since the last access to a Redis object.",
        object::idletime,
    ),
    c(
        "refcount",
        3,
        READONLY,
        (2, 2, 1),
        "generic",
        "2.2.3",
        "Returns the reference count of a value of a key.",
        object::refcount,
    ),
    c(
        "help",
        2,
        LOADING | STALE,
        NK,
        "generic",
        "6.2.0",
        "Returns helpful text about the different subcommands.",
        object::object_help,
    ),
];

/// SCRIPT subcommands. LOAD, EXISTS and FLUSH use the Lua state, which scripts hold:
/// `GLOBAL` makes them wait for (or get -BUSY from) a running script.
const SCRIPT_SUBS: &[CommandSpec] = &[
    c(
        "debug",
        3,
        NOSCRIPT,
        NK,
        "scripting",
        "3.2.0",
        "Sets the debug mode of server-side Lua scripts.",
        script::debug,
    ),
    c(
        "exists",
        -3,
        NOSCRIPT | GLOBAL,
        NK,
        "scripting",
        "2.6.0",
        "Determines whether server-side Lua scripts exist in the script cache.",
        script::exists,
    ),
    c(
        "flush",
        -2,
        NOSCRIPT | GLOBAL,
        NK,
        "scripting",
        "2.6.0",
        "Removes all server-side Lua scripts from the script cache.",
        script::flush,
    ),
    c(
        "help",
        2,
        LOADING | STALE,
        NK,
        "scripting",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
        script::help,
    ),
    c(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        NK,
        "scripting",
        "2.6.0",
        "Terminates a server-side Lua script during execution.",
        script::kill,
    ),
    c(
        "load",
        3,
        NOSCRIPT | STALE | GLOBAL,
        NK,
        "scripting",
        "2.6.0",
        "Loads a server-side Lua script to the script cache.",
        script::load,
    ),
];

/// FUNCTION subcommands: those that use the functions' Lua state are `GLOBAL`, like SCRIPT's.
const FUNCTION_SUBS: &[CommandSpec] = &[
    c(
        "delete",
        3,
        NOSCRIPT | WRITE | GLOBAL,
        NK,
        "scripting",
        "7.0.0",
        "Deletes a library and its functions.",
        function::delete,
    ),
    c(
        "dump",
        2,
        NOSCRIPT | GLOBAL,
        NK,
        "scripting",
        "7.0.0",
        "Dumps all libraries into a serialized binary payload.",
        function::dump,
    ),
    c(
        "flush",
        -2,
        NOSCRIPT | WRITE | GLOBAL,
        NK,
        "scripting",
        "7.0.0",
        "Deletes all libraries and functions.",
        function::flush,
    ),
    c(
        "help",
        2,
        LOADING | STALE,
        NK,
        "scripting",
        "7.0.0",
        "Returns helpful text about the different subcommands.",
        function::help,
    ),
    c(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        NK,
        "scripting",
        "7.0.0",
        "Terminates a function during execution.",
        function::kill,
    ),
    c(
        "list",
        -2,
        NOSCRIPT | GLOBAL,
        NK,
        "scripting",
        "7.0.0",
        "Returns information about all libraries.",
        function::list,
    ),
    c(
        "load",
        -3,
        NOSCRIPT | WRITE | DENYOOM | GLOBAL,
        NK,
        "scripting",
        "7.0.0",
        "Creates a library.",
        function::load,
    ),
    c(
        "restore",
        -3,
        NOSCRIPT | WRITE | DENYOOM | GLOBAL,
        NK,
        "scripting",
        "7.0.0",
        "Restores all libraries from a payload.",
        function::restore,
    ),
    c(
        "stats",
        2,
        NOSCRIPT | ALLOW_BUSY,
        NK,
        "scripting",
        "7.0.0",
        "Returns information about a function during execution.",
        function::stats,
    ),
];

/// PUBSUB subcommands.
const PUBSUB_SUBS: &[CommandSpec] = &[
    c(
        "channels",
        -2,
        LOADING | STALE,
        NK,
        "pubsub",
        "2.8.0",
        "Returns the active channels.",
        pubsub::pubsub_channels,
    ),
    c(
        "numpat",
        2,
        LOADING | STALE,
        NK,
        "pubsub",
        "2.8.0",
        "Returns a count of unique pattern subscriptions.",
        pubsub::pubsub_numpat,
    ),
    c(
        "numsub",
        -2,
        LOADING | STALE,
        NK,
        "pubsub",
        "2.8.0",
        "Returns a count of subscribers to channels.",
        pubsub::pubsub_numsub,
    ),
    c(
        "shardchannels",
        -2,
        LOADING | STALE,
        NK,
        "pubsub",
        "7.0.0",
        "Returns the active shard channels.",
        pubsub::pubsub_shardchannels,
    ),
    c(
        "shardnumsub",
        -2,
        LOADING | STALE,
        NK,
        "pubsub",
        "7.0.0",
        "Returns the count of subscribers of shard channels.",
        pubsub::pubsub_shardnumsub,
    ),
    c(
        "help",
        2,
        LOADING | STALE,
        NK,
        "pubsub",
        "6.2.0",
        "Returns helpful text about the different subcommands.",
        pubsub::pubsub_help,
    ),
];

/// SUBSCRIBE and friends: Redis flags them noscript, loading, stale (and pubsub).
const PUBSUB_CMD: u32 = NOSCRIPT | LOADING | STALE;

/// Every command kvd knows.
pub static COMMANDS: &[CommandSpec] = &[
    // connection
    c("ping", -1, FAST, NK, "connection", "1.0.0", "Returns the server's liveliness response.", connection::ping),
    c("echo", 2, FAST, NK, "connection", "1.0.0", "Returns the given string.", connection::echo),
    c("quit", -1, ALLOW_BUSY | CONN | NO_AUTH, NK, "connection", "1.0.0", "Closes the connection.", connection::quit),
    c("reset", 1, CONN | NO_AUTH, NK, "connection", "6.2.0", "Resets the connection.", connection::reset),
    c("auth", -2, CONN | NO_AUTH | ALLOW_BUSY, NK, "connection", "1.0.0", "Authenticates the connection.", connection::auth),
    c("hello", -1, CONN | NO_AUTH | ALLOW_BUSY, NK, "connection", "6.0.0", "Handshakes with the Redis server.", connection::hello),
    c("select", 2, LOADING | STALE | FAST, NK, "connection", "1.0.0", "Changes the selected database.", connection::select),
    container("client", -2, "connection", "2.4.0", "A container for client connection commands.", CLIENT_SUBS),
    // server
    c("swapdb", 3, WRITE | FAST | GLOBAL, NK, "server", "4.0.0", "Swaps two Redis databases.", server::swapdb),
    c("info", -1, LOADING | STALE, NK, "server", "1.0.0", "Returns information and statistics about the server.", server::info),
    container("config", -2, "server", "2.0.0", "A container for server configuration commands.", CONFIG_SUBS),
    CommandSpec { arity: -1, ..container("command", -1, "server", "2.8.13", "Returns detailed information about all commands.", COMMAND_SUBS) },
    c("dbsize", 1, READONLY | FAST | KEYSPACE, NK, "server", "1.0.0", "Returns the number of keys in the database.", server::dbsize),
    c("flushdb", -1, WRITE | GLOBAL, NK, "server", "1.0.0", "Removes all keys from the current database.", server::flushdb),
    c("flushall", -1, WRITE | GLOBAL, NK, "server", "1.0.0", "Removes all keys from all databases.", server::flushall),
    c("time", 1, LOADING | STALE | FAST, NK, "server", "2.6.0", "Returns the server time.", server::time),
    c("lastsave", 1, LOADING | STALE | FAST, NK, "server", "1.0.0", "Returns the Unix timestamp of the last successful save to disk.", server::lastsave),
    c("save", 1, ADMIN | NOSCRIPT | NO_MULTI, NK, "server", "1.0.0", "Synchronously saves the database(s) to disk (flush and fsync).", server::save),
    c("bgsave", -1, ADMIN | NOSCRIPT, NK, "server", "1.0.0", "Asynchronously saves the database(s) to disk (here: flush and fsync, then reply).", server::bgsave),
    c("compact", -1, ADMIN | NOSCRIPT | NO_MULTI, NK, "server", "kvd", "kvd: compacts the whole store, or RANGE start end of the selected database, and replies when done.", admin::compact),
    c("checkpoint", 2, ADMIN | NOSCRIPT | NO_MULTI, NK, "server", "kvd", "kvd: writes a consistent copy of the data directory into a new directory (a backup).", admin::checkpoint),
    c("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, NK, "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the server.", server::shutdown),
    container("slowlog", -2, "server", "2.2.12", "A container for slow log commands.", SLOWLOG_SUBS),
    container("acl", -2, "server", "6.0.0", "A container for Access List Control commands.", ACL_SUBS),
    container("cluster", -2, "cluster", "3.0.0", "A container for Redis Cluster commands.", CLUSTER_SUBS),
    c("readonly", 1, FAST | LOADING | STALE, NK, "cluster", "3.0.0", "Enables read-only queries for a connection to a Redis Cluster replica node (kvd: OK in cluster-compat mode).", cluster_compat::cluster_client_mode),
    c("readwrite", 1, FAST | LOADING | STALE, NK, "cluster", "3.0.0", "Enables read-write queries for a connection to a Redis Cluster replica node (kvd: OK in cluster-compat mode).", cluster_compat::cluster_client_mode),
    c("asking", 1, FAST, NK, "cluster", "3.0.0", "Signals that a cluster client is following an -ASK redirect (kvd: OK in cluster-compat mode).", cluster_compat::cluster_client_mode),
    c("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, NK, "server", "1.0.0", "Listens for all requests received by the server in real-time.", server::monitor),
    // keys
    c("del", -2, WRITE, KALL, "generic", "1.0.0", "Deletes one or more keys.", keys::del),
    c("unlink", -2, WRITE | FAST, KALL, "generic", "4.0.0", "Asynchronously deletes one or more keys.", keys::del),
    c("exists", -2, READONLY | FAST, KALL, "generic", "1.0.0", "Determines whether one or more keys exist.", keys::exists),
    c("touch", -2, READONLY | FAST, KALL, "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", keys::exists),
    c("type", 2, READONLY | FAST, K1, "generic", "1.0.0", "Determines the type of value stored at a key.", keys::type_),
    c("rename", 3, WRITE, K12, "generic", "1.0.0", "Renames a key and overwrites the destination.", keys::rename),
    c("renamenx", 3, WRITE | FAST, K12, "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", keys::renamenx),
    c("copy", -3, WRITE | DENYOOM, K12, "generic", "6.2.0", "Copies the value of a key to a new key.", keys::copy),
    c("move", 3, WRITE | FAST, K1, "generic", "1.0.0", "Moves a key to another database.", keys::move_),
    c("expire", -3, WRITE | FAST, K1, "generic", "1.0.0", "Sets the expiration time of a key in seconds.", keys::expire),
    c("pexpire", -3, WRITE | FAST, K1, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", keys::pexpire),
    c("expireat", -3, WRITE | FAST, K1, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", keys::expireat),
    c("pexpireat", -3, WRITE | FAST, K1, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", keys::pexpireat),
    c("ttl", 2, READONLY | FAST, K1, "generic", "1.0.0", "Returns the expiration time in seconds of a key.", keys::ttl),
    c("pttl", 2, READONLY | FAST, K1, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", keys::pttl),
    c("expiretime", 2, READONLY | FAST, K1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", keys::expiretime),
    c("pexpiretime", 2, READONLY | FAST, K1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", keys::pexpiretime),
    c("persist", 2, WRITE | FAST, K1, "generic", "2.2.0", "Removes the expiration time of a key.", keys::persist),
    c("keys", 2, READONLY | KEYSPACE, NK, "generic", "1.0.0", "Returns all key names that match a pattern.", keys::keys),
    c("scan", -2, READONLY | KEYSPACE, NK, "generic", "2.8.0", "Iterates over the key names in the database.", keys::scan),
    c("randomkey", 1, READONLY | KEYSPACE, NK, "generic", "1.0.0", "Returns a random key name from the database.", keys::randomkey),
    // strings
    c("get", 2, READONLY | FAST, K1, "string", "1.0.0", "Returns the string value of a key.", strings::get),
    c("set", -3, WRITE | DENYOOM, K1, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", strings::set),
    c("setnx", 3, WRITE | DENYOOM | FAST, K1, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", strings::setnx),
    c("setex", 4, WRITE | DENYOOM, K1, "string", "2.0.0", "Sets the string value and expiration time of a key.", strings::setex),
    c("psetex", 4, WRITE | DENYOOM, K1, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key.", strings::psetex),
    c("getset", 3, WRITE | DENYOOM | FAST, K1, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", strings::getset),
    c("getdel", 2, WRITE | FAST, K1, "string", "6.2.0", "Returns the string value of a key after deleting the key.", strings::getdel),
    c("getex", -2, WRITE | FAST, K1, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", strings::getex),
    c("mget", -2, READONLY | FAST, KALL, "string", "1.0.0", "Atomically returns the string values of one or more keys.", strings::mget),
    c("mset", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", strings::mset),
    c("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", strings::msetnx),
    c("append", 3, WRITE | DENYOOM | FAST, K1, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", strings::append),
    c("strlen", 2, READONLY | FAST, K1, "string", "2.2.0", "Returns the length of a string value.", strings::strlen),
    c("getrange", 4, READONLY, K1, "string", "2.4.0", "Returns a substring of the string stored at a key.", strings::getrange),
    c("substr", 4, READONLY, K1, "string", "1.0.0", "Returns a substring from a string value.", strings::getrange),
    c("setrange", 4, WRITE | DENYOOM, K1, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", strings::setrange),
    c("incr", 2, WRITE | DENYOOM | FAST, K1, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", strings::incr),
    c("decr", 2, WRITE | DENYOOM | FAST, K1, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", strings::decr),
    c("incrby", 3, WRITE | DENYOOM | FAST, K1, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", strings::incrby),
    c("decrby", 3, WRITE | DENYOOM | FAST, K1, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", strings::decrby),
    c("incrbyfloat", 3, WRITE | DENYOOM | FAST, K1, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", strings::incrbyfloat),
    c("lcs", -3, READONLY, K12, "string", "7.0.0", "Finds the longest common substring.", strings::lcs),
    c("delex", -2, WRITE | FAST, K1, "string", "8.4.0", "Conditionally removes the specified key based on value or digest comparison.", strings::delex),
    c("digest", 2, READONLY | FAST, K1, "string", "8.4.0", "Returns the hash digest of a string value as a hexadecimal string.", strings::digest),
    c("setbit", 4, WRITE | DENYOOM, K1, "bitmap", "2.2.0", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", bits::setbit),
    c("getbit", 3, READONLY | FAST, K1, "bitmap", "2.2.0", "Returns a bit value by offset.", bits::getbit),
    c("bitcount", -2, READONLY, K1, "bitmap", "2.6.0", "Counts the number of set bits (population counting) in a string.", bits::bitcount),
    c("bitpos", -3, READONLY, K1, "bitmap", "2.8.7", "Finds the first set (1) or clear (0) bit in a string.", bits::bitpos),
    // transactions
    c("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NK, "transactions", "1.2.0", "Starts a transaction.", transactions::multi),
    c("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, NK, "transactions", "1.2.0", "Executes all commands in a transaction.", transactions::exec),
    c("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NK, "transactions", "2.0.0", "Discards a transaction.", transactions::discard),
    c("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, KALL, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", transactions::watch),
    c("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NK, "transactions", "2.2.0", "Forgets about watched keys of a transaction.", transactions::unwatch),
    // kvd: versions, locks, idempotent retries (docs/versions-and-locks.md)
    c("getwithetag", 2, READONLY | FAST, K1, "string", "kvd-0.1.0", "Returns the version (ETag) and the value of a key.", versions::getwithetag),
    c("getifnotmatch", 3, READONLY | FAST, K1, "string", "kvd-0.1.0", "Returns the version and value of a key only if its version differs from the given one.", versions::getifnotmatch),
    c("setifmatch", -4, WRITE | DENYOOM, K1, "string", "kvd-0.1.0", "Sets a key only if its version matches; replies with the new or the current version.", versions::setifmatch),
    c("delifmatch", 3, WRITE | FAST, K1, "string", "kvd-0.1.0", "Deletes a key only if its version matches; replies with the current version otherwise.", versions::delifmatch),
    c("lock", -4, WRITE | FAST, K1, "string", "kvd-0.1.0", "Acquires a lease lock, optionally waiting for its release; replies with a fencing token.", locks::lock),
    c("unlock", 3, WRITE | FAST, K1, "string", "kvd-0.1.0", "Releases a lock held by the given owner (DELEX key IFEQ owner).", locks::unlock),
    c("idempotent", -3, WRITE, NK, "generic", "kvd-0.1.0", "Runs a write command at most once per request id within the idempotency window.", idempotent::idempotent),
    // kvd: siblings databases on the ring (docs/consistency.md, "Siblings")
    c("sibget", 2, READONLY | FAST, K1, "string", "kvd-0.1.0", "Returns a causality token and every concurrent value of a key in a siblings database.", siblings::needs_cluster),
    c("sibset", 4, WRITE | DENYOOM, K1, "string", "kvd-0.1.0", "Writes a value superseding exactly the values a causality token covers (- : none) in a siblings database.", siblings::needs_cluster),
    c("sibdel", 3, WRITE | FAST, K1, "string", "kvd-0.1.0", "Removes the values a causality token covers in a siblings database.", siblings::needs_cluster),
    // Redis behaviours client libraries rely on (docs/compatibility.md)
    c("replicaof", 3, ADMIN | NOSCRIPT | STALE, NK, "server", "5.0.0", "Configures a server as replica of another, or promotes it to a master.", replication::replicaof),
    c("slaveof", 3, ADMIN | NOSCRIPT | STALE, NK, "server", "1.0.0", "Sets a Redis server as a replica of another, or promotes it to being a master.", replication::replicaof),
    c("role", 1, NOSCRIPT | LOADING | STALE | FAST, NK, "server", "2.8.12", "Returns the replication role.", replication::role),
    container("object", -2, "generic", "2.2.3", "A container for object introspection commands.", OBJECT_SUBS),
    c("dump", 2, READONLY, K1, "generic", "2.6.0", "Returns a serialized representation of the value stored at a key.", dump::dump),
    c("restore", -4, WRITE | DENYOOM, K1, "generic", "2.6.0", "Creates a key from the serialized representation of a value.", dump::restore),
    c("bitop", -4, WRITE | DENYOOM, (2, -1, 1), "bitmap", "2.6.0", "Performs bitwise operations on multiple strings, and stores the result.", bitop::bitop),
    c("bitfield", -2, WRITE | DENYOOM, K1, "bitmap", "3.2.0", "Performs arbitrary bitfield integer operations on strings.", bitfield::bitfield),
    // SORT may STORE into a key its key positions do not name: it runs alone (GLOBAL)
    // so that write happens under the world lock.
    c("sort", -2, WRITE | DENYOOM | GLOBAL, K1, "generic", "1.0.0", "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.", sort::sort),
    c("sort_ro", -2, READONLY, K1, "generic", "7.0.0", "Returns the sorted elements of a list, a set, or a sorted set.", sort::sort_ro),
    c("bitfield_ro", -2, READONLY | FAST, K1, "bitmap", "6.0.0", "Performs arbitrary read-only bitfield integer operations on strings.", bitfield::bitfield_ro),
    // scripting (docs/scripting.md): a script runs alone (GLOBAL: exclusive world lock)
    c("eval", -3, NOSCRIPT | SKIP_MONITOR | STALE | GLOBAL, NK, "scripting", "2.6.0", "Executes a server-side Lua script.", eval::eval),
    c("evalsha", -3, NOSCRIPT | SKIP_MONITOR | STALE | GLOBAL, NK, "scripting", "2.6.0", "Executes a server-side Lua script by SHA1 digest.", eval::evalsha),
    c("eval_ro", -3, READONLY | NOSCRIPT | SKIP_MONITOR | STALE | GLOBAL, NK, "scripting", "7.0.0", "Executes a read-only server-side Lua script.", eval::eval_ro),
    c("evalsha_ro", -3, READONLY | NOSCRIPT | SKIP_MONITOR | STALE | GLOBAL, NK, "scripting", "7.0.0", "Executes a read-only server-side Lua script by SHA1 digest.", eval::evalsha_ro),
    container("script", -2, "scripting", "2.6.0", "A container for Lua scripts management commands.", SCRIPT_SUBS),
    c("fcall", -3, NOSCRIPT | SKIP_MONITOR | STALE | GLOBAL, NK, "scripting", "7.0.0", "Invokes a function.", function::fcall),
    c("fcall_ro", -3, READONLY | NOSCRIPT | SKIP_MONITOR | STALE | GLOBAL, NK, "scripting", "7.0.0", "Invokes a read-only function.", function::fcall_ro),
    container("function", -2, "scripting", "7.0.0", "A container for function commands.", FUNCTION_SUBS),
    // pubsub (docs/pubsub.md)
    c("subscribe", -2, PUBSUB_CMD, NK, "pubsub", "2.0.0", "Listens for messages published to channels.", pubsub::subscribe),
    c("psubscribe", -2, PUBSUB_CMD, NK, "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns.", pubsub::psubscribe),
    c("ssubscribe", -2, PUBSUB_CMD, NK, "pubsub", "7.0.0", "Listens for messages published to shard channels.", pubsub::ssubscribe),
    c("unsubscribe", -1, PUBSUB_CMD, NK, "pubsub", "2.0.0", "Stops listening to messages posted to channels.", pubsub::unsubscribe),
    c("punsubscribe", -1, PUBSUB_CMD, NK, "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns.", pubsub::punsubscribe),
    c("sunsubscribe", -1, PUBSUB_CMD, NK, "pubsub", "7.0.0", "Stops listening to messages posted to shard channels.", pubsub::sunsubscribe),
    c("publish", 3, LOADING | STALE | FAST, NK, "pubsub", "2.0.0", "Posts a message to a channel.", pubsub::publish),
    c("spublish", 3, LOADING | STALE | FAST, NK, "pubsub", "7.0.0", "Post a message to a shard channel", pubsub::spublish),
    container("pubsub", -2, "pubsub", "2.8.0", "A container for Pub/Sub commands.", PUBSUB_SUBS),
];

fn index() -> &'static HashMap<&'static str, &'static CommandSpec, TableHash> {
    static INDEX: OnceLock<HashMap<&'static str, &'static CommandSpec, TableHash>> =
        OnceLock::new();
    INDEX.get_or_init(|| COMMANDS.iter().map(|c| (c.name, c)).collect())
}

fn lower_into<'b>(name: &[u8], buf: &'b mut [u8; 32]) -> Option<&'b str> {
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(&buf[..name.len()]).ok()
}

/// Looks a command up by name (any case), without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    index().get(lower_into(name, &mut buf)?).copied()
}

/// Looks a subcommand of `container` up by name (any case).
pub fn lookup_sub(container: &'static CommandSpec, name: &[u8]) -> Option<&'static CommandSpec> {
    container
        .subcommands
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `key_args` walks exactly the positions Redis's first/last/step name, for every
    /// command and argument count (checked against the loop `getKeysUsingKeySpecs` runs).
    #[test]
    fn key_args_follow_first_last_step() {
        for spec in COMMANDS
            .iter()
            .chain(COMMANDS.iter().flat_map(|c| c.subcommands))
        {
            for argc in 0..12i32 {
                let args: Vec<Bytes> = (0..argc).map(|i| Bytes::from(vec![i as u8])).collect();
                let mut expected = Vec::new();
                if spec.first_key > 0 {
                    let last = if spec.last_key < 0 {
                        argc + spec.last_key
                    } else {
                        spec.last_key
                    };
                    let mut i = spec.first_key;
                    while i <= last && i < argc {
                        expected.push(i as u8);
                        i += spec.step.max(1);
                    }
                }
                let got: Vec<u8> = spec.key_args(&args).map(|k| k[0]).collect();
                assert_eq!(got, expected, "{} with {argc} arguments", spec.name);
            }
        }
    }

    #[test]
    fn table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for c in COMMANDS {
            assert!(seen.insert(c.name), "duplicate {}", c.name);
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(
                c.handler.is_some() == c.subcommands.is_empty(),
                "{}",
                c.name
            );
            assert!(c.arity != 0, "{}", c.name);
        }
        assert!(lookup(b"GeT").is_some());
        assert!(lookup(b"nosuchcommand").is_none());
        let client = lookup(b"client").unwrap();
        assert_eq!(lookup_sub(client, b"SETNAME").unwrap().arity, 3);
    }

    #[test]
    fn key_positions() {
        let args: Vec<Bytes> = ["MSET", "a", "1", "b", "2"]
            .iter()
            .map(|s| Bytes::from(*s))
            .collect();
        let keys = lookup(b"mset").unwrap().keys(&args);
        assert_eq!(keys, vec![&args[1], &args[3]]);
        let args: Vec<Bytes> = ["DEL", "a", "b"].iter().map(|s| Bytes::from(*s)).collect();
        assert_eq!(lookup(b"del").unwrap().keys(&args).len(), 2);
    }
}

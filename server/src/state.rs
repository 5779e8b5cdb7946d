//! State shared by all connections (the store, config, clients, counters, slow log) and the
//! per-connection client state.

use crate::acl::{Acl, User};
use crate::config::Config;
use crate::keyspace::Store;
use crate::shutdown::Shutdown;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{broadcast, Notify};

/// Server-wide counters (INFO stats).
#[derive(Default)]
pub struct Counters {
    /// Commands executed.
    pub commands: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused (maxclients).
    pub rejected: AtomicU64,
    /// Keys removed by the active expiry sweep.
    pub expired_keys: AtomicU64,
    /// Reads that found their key.
    pub keyspace_hits: AtomicU64,
    /// Reads that did not.
    pub keyspace_misses: AtomicU64,
    /// Bytes read from clients.
    pub net_input: AtomicU64,
    /// Bytes written to clients.
    pub net_output: AtomicU64,
    /// Idempotent requests answered from a stored reply.
    pub idempotent_replays: AtomicU64,
    /// Idempotency records removed by the background sweep once their window passed.
    pub expired_idempotency_records: AtomicU64,
    /// Protocol errors that closed a connection.
    pub protocol_errors: AtomicU64,
    /// Clients disconnected for passing an output buffer limit.
    pub output_limit_disconnects: AtomicU64,
    /// Commands of pipelined runs of reads whose keys a cluster node read from their
    /// replicas together (cluster_mode::pipelined_reads).
    pub pipelined_reads_ahead: AtomicU64,
    /// Pipelined writes a cluster node replicated together with the rest of their run
    /// (cluster_mode::pipelined_writes).
    pub pipelined_writes_grouped: AtomicU64,
    /// Polls by which a LOCK ... WAIT on a cluster node found its lock still held with a
    /// quorum read, instead of running a consensus round (cluster_mode::lock_wait).
    pub lock_wait_reads: AtomicU64,
    /// Clients waiting in LOCK ... WAIT now (INFO `blocked_clients`; a gauge that
    /// CONFIG RESETSTAT leaves alone).
    pub blocked_clients: AtomicU64,
}

/// One SLOWLOG entry.
#[derive(Debug, Clone)]
pub struct SlowEntry {
    /// Entry id.
    pub id: u64,
    /// Unix seconds when the command ran.
    pub time: i64,
    /// Duration in microseconds.
    pub micros: u64,
    /// Arguments (truncated like Redis: 32 args, 128 bytes each).
    pub args: Vec<Bytes>,
    /// Client address.
    pub addr: String,
    /// Client name.
    pub name: String,
}

/// The slow log.
#[derive(Default)]
pub struct SlowLog {
    /// Newest first.
    pub entries: VecDeque<SlowEntry>,
    /// Next id.
    pub next_id: u64,
}

/// What CLIENT LIST/KILL and INFO need to know about a connection.
pub struct ClientInfo {
    /// Unique id.
    pub id: u64,
    /// Peer address.
    pub addr: String,
    /// Local address.
    pub laddr: String,
    /// Creation time.
    pub created: Instant,
    /// CLIENT SETNAME.
    pub name: Mutex<String>,
    /// CLIENT SETINFO lib-name / lib-ver.
    pub lib: Mutex<(String, String)>,
    /// Selected database.
    pub db: AtomicUsize,
    /// Last command name.
    pub last_cmd: Mutex<&'static str>,
    /// Last activity, Unix ms.
    pub last_active: AtomicI64,
    /// Protocol version (2 or 3).
    pub resp: AtomicU8,
    /// Set by CLIENT KILL.
    pub killed: AtomicBool,
    /// Wakes the connection when killed.
    pub kill: Notify,
    /// Name of the ACL user (CLIENT LIST, and ACL DELUSER closes its connections).
    pub user: Mutex<String>,
    /// Commands queued by MULTI, -1 outside a transaction (CLIENT LIST `multi=`, `flags=x`).
    pub multi: AtomicI64,
    /// Pub/sub messages and invalidations other connections queue for this one.
    pub mailbox: crate::pubsub::Mailbox,
}

/// The server: everything connections share.
pub struct Shared {
    /// Data.
    pub store: Store,
    /// Configuration (CONFIG SET changes it).
    pub config: RwLock<Config>,
    /// Connected clients by id.
    pub clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    /// Next client id.
    pub next_client_id: AtomicU64,
    /// Counters.
    pub counters: Counters,
    /// Slow log.
    pub slowlog: Mutex<SlowLog>,
    /// MONITOR feed.
    pub monitor: broadcast::Sender<Bytes>,
    /// Number of MONITOR clients.
    pub monitors: AtomicUsize,
    /// Shutdown trigger.
    pub shutdown: Shutdown,
    /// Start time.
    pub started: Instant,
    /// Unix seconds of the last SAVE/BGSAVE (or start).
    pub last_save: AtomicI64,
    /// Run id (INFO server).
    pub run_id: String,
    /// ACL users and log.
    pub acl: Acl,
    /// On a cluster node, the ring that key commands run on (set once at start).
    pub ring: std::sync::OnceLock<Arc<dyn kv_cluster::ring::Ring>>,
    /// Calls and time per command (INFO commandstats).
    pub command_stats: crate::commands::command_stats::CommandStats,
    /// Lua scripting: the Lua state, the script cache, the running script.
    pub scripting: crate::scripting::Scripting,
    /// Per-command calls, failures and latencies (/metrics).
    pub command_metrics: crate::command_metrics::CommandMetrics,
    /// Pub/sub subscriptions of every connection.
    pub pubsub: crate::pubsub::Hub,
}

/// A key WATCHed on a cluster node: EXEC aborts unless the key still has this version
/// (and is still live, if it was) when the transaction locks it.
#[derive(Debug, Clone)]
pub struct RingWatch {
    /// Its database.
    pub db: usize,
    /// The key.
    pub key: Bytes,
    /// Its version when watched (zero when absent).
    pub version: kv_cluster::Version,
    /// Whether it held a live value when watched.
    pub live: bool,
}

/// Per-connection state.
pub struct Client {
    /// Shared, listable info.
    pub info: Arc<ClientInfo>,
    /// Selected database.
    pub db: usize,
    /// RESP3 negotiated.
    pub resp3: bool,
    /// The user this connection runs as: set by AUTH/HELLO, or the default user at
    /// connect time when it needs no password; `None` = not authenticated.
    pub user: Option<Arc<User>>,
    /// Queued commands while in MULTI.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A queued command was rejected: EXEC must fail with EXECABORT.
    pub multi_error: bool,
    /// Bytes held by the MULTI queue (arguments plus a per-argument overhead), bounded by
    /// `client-query-buffer-limit`.
    pub multi_bytes: usize,
    /// Watched keys: (db, key, existed-at-watch).
    pub watched: Vec<(usize, Bytes, bool)>,
    /// Watched keys on a cluster node, with the version a quorum read found
    /// (cluster_mode::transaction).
    pub ring_watched: Vec<RingWatch>,
    /// Set when a watched key is written.
    pub dirty: Arc<AtomicBool>,
    /// Close after sending the reply (QUIT, protocol errors, CLIENT KILL of self).
    pub close: bool,
    /// Switch this connection to MONITOR mode.
    pub monitor: bool,
    /// Close without replying (SHUTDOWN).
    pub silent: bool,
    /// Pending replies passed the output buffer hard limit: drop them and disconnect.
    pub output_limit_reached: bool,
    /// Reply bytes counted by [`crate::commands::Ctx::charge_reply`] in this batch.
    pub reply_bytes: u64,
    /// A blocking LOCK asked to wait before retrying.
    pub wait: Option<WaitFor>,
    /// Deadline of the LOCK being retried (set by the connection between attempts).
    pub lock_deadline: Option<i64>,
    /// On a cluster node: how many replicas this connection's requests wait for
    /// (`CLUSTER CONSISTENCY`, cqlsh's CONSISTENCY).
    pub consistency: kv_cluster::config::Consistency,
    /// Subscriptions and CLIENT TRACKING state.
    pub pubsub: crate::pubsub::ClientPubSub,
    /// This client's commits may leave their WAL records buffered
    /// ([`kv_engine::Db::write_deferred`]): set by a RESP connection, which writes the
    /// WAL out before it sends any reply (connection.rs, `flush`).
    pub defers_wal_writes: bool,
}

/// A LOCK ... WAIT that must sleep before its next attempt.
#[derive(Debug, Clone)]
pub struct WaitFor {
    /// Database of the key.
    pub db: usize,
    /// The lock key: any write to it wakes the waiter.
    pub key: Bytes,
    /// Retry at this Unix ms time at the latest (holder's lease end or the deadline).
    pub wake_at: i64,
    /// Give up (reply nil) at this Unix ms time.
    pub deadline: i64,
}

impl Client {
    /// A new client.
    pub fn new(info: Arc<ClientInfo>, user: Option<Arc<User>>) -> Client {
        Client {
            info,
            db: 0,
            resp3: false,
            user,
            multi: None,
            multi_error: false,
            multi_bytes: 0,
            watched: Vec::new(),
            ring_watched: Vec::new(),
            dirty: Arc::new(AtomicBool::new(false)),
            close: false,
            monitor: false,
            silent: false,
            output_limit_reached: false,
            reply_bytes: 0,
            wait: None,
            lock_deadline: None,
            consistency: kv_cluster::config::Consistency::default(),
            pubsub: Default::default(),
            defers_wal_writes: false,
        }
    }

    /// The user whose permissions commands are checked against: the authenticated one,
    /// else the default user (as in Redis, where a connection's user is the default
    /// user until AUTH; whether it must authenticate first is [`Client::auth_required`]).
    pub fn acting_user(&self, srv: &Shared) -> Arc<User> {
        self.user
            .clone()
            .unwrap_or_else(|| srv.acl.default_user().clone())
    }

    /// True while commands other than AUTH/HELLO/QUIT/RESET must be refused (NOAUTH).
    /// Re-evaluated at every command, as Redis's `authRequired`: an unauthenticated
    /// connection may go on once the default user needs no password.
    pub fn auth_required(&self, srv: &Shared) -> bool {
        self.user.is_none() && srv.acl.open_default().is_none()
    }

    /// Switches the connection to `user` (None: back to unauthenticated).
    pub fn set_user(&mut self, user: Option<Arc<User>>) {
        let name = user.as_ref().map_or(crate::acl::DEFAULT_USER, |u| &u.name);
        *self.info.user.lock() = name.to_string();
        self.user = user;
    }

    /// Forgets all WATCHes.
    pub fn unwatch_all(&mut self, store: &Store) {
        for (db, key, _) in self.watched.drain(..) {
            store.events.unwatch(db, &key, &self.dirty);
        }
        self.ring_watched.clear();
        self.dirty.store(false, Ordering::Release);
    }

    /// Selects a database (mirrored for CLIENT LIST).
    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.info.db.store(db, Ordering::Relaxed);
    }
}

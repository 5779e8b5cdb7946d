//! Command dispatch: name lookup, authentication, arity and subcommand checks, the ACL
//! permission check, MULTI queueing, locking, one [`Txn`] per command, commit, slow log and MONITOR feed.
//! One file per command family; each command parses its own arguments.

pub mod acl;
pub mod admin;
pub mod args;
pub mod bitfield;
pub mod bitop;
pub mod bits;
pub mod cluster;
pub mod cluster_compat;
pub mod command_stats;
pub mod connection;
pub mod dump;
pub mod glob;
pub mod idempotent;
pub mod info_fields;
pub mod keys;
pub mod locks;
pub mod long_double;
pub mod lzf;
pub mod object;
pub mod pubsub;
pub mod rdb_string;
pub mod redact;
pub mod replication;
pub mod server;
pub mod siblings;
pub mod sort;
pub mod strings;
pub mod table;
pub mod table_hash;
pub mod tracking;
pub mod transactions;
pub mod versions;

use crate::acl::check::{check, Denial};
use crate::acl::log::Reason;
use crate::keyspace::{Entry, Guard, Txn, ValueType};
use crate::protocol::Reply;
use crate::state::{Client, Shared, SlowEntry};
use args::{err, WRONGTYPE};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::Instant;
use table::{CommandSpec, GLOBAL, KEYSPACE, NO_AUTH, NO_MULTI, READONLY, WRITE};

/// A command's result: the reply, or an error reply (so `?` works on parsing helpers).
pub type CmdResult = Result<Reply, Reply>;

impl From<kv_engine::Error> for Reply {
    fn from(e: kv_engine::Error) -> Reply {
        tracing::error!(error = %e, "engine error");
        match e {
            // Redis refuses writes the same way after a failed AOF write, until a retry
            // succeeds; the engine's auto-resume plays that retry.
            kv_engine::Error::Suspended(why) => Reply::error(format!(
                "MISCONF Errors writing to disk: writes are suspended until the engine's \
                 automatic retry succeeds ({why})"
            )),
            e => Reply::error(format!("ERR storage error: {e}")),
        }
    }
}

/// What a command runs with.
pub struct Ctx<'a> {
    /// The server.
    pub srv: &'a Shared,
    /// The calling client.
    pub client: &'a mut Client,
    /// Reads and buffered writes, committed after the command.
    pub txn: Txn<'a>,
}

impl Ctx<'_> {
    /// Counts `bytes` more of the replies this client's current batch builds. Past the
    /// output buffer hard limit the client is marked for disconnection and the command
    /// stops with an error (the connection drops its replies anyway), so one command
    /// (an MGET of one large key many times, KEYS on a huge database) cannot build an
    /// unbounded reply in memory.
    pub fn charge_reply(&mut self, bytes: usize) -> Result<(), Reply> {
        if bytes > self.reply_room() {
            self.client.output_limit_reached = true;
            self.client.close = true;
            return Err(err(
                "ERR reply exceeds client-output-buffer-limit; closing the connection",
            ));
        }
        self.client.reply_bytes = self.client.reply_bytes.saturating_add(bytes as u64);
        Ok(())
    }

    /// Reply bytes this batch may still build before [`Self::charge_reply`] refuses.
    pub fn reply_room(&self) -> usize {
        let limits = self.srv.config.read().client_output_buffer_limit;
        match limits.normal.hard {
            0 => usize::MAX,
            hard => hard.saturating_sub(self.client.reply_bytes) as usize,
        }
    }

    /// The selected database.
    pub fn db(&self) -> usize {
        self.client.db
    }

    /// A key of any type (expired keys read as absent).
    pub fn get(&self, key: &[u8]) -> Result<Option<Entry>, Reply> {
        Ok(self.txn.get(self.client.db, key)?)
    }

    /// A string key; WRONGTYPE for other types.
    pub fn get_str(&self, key: &[u8]) -> Result<Option<Entry>, Reply> {
        match self.get(key)? {
            Some(e) if e.ty != ValueType::String => Err(err(WRONGTYPE)),
            other => Ok(other),
        }
    }

    /// Counts a read as hit or miss (INFO keyspace_hits/misses).
    pub fn count_read(&self, hit: bool) {
        let c = &self.srv.counters;
        if hit {
            &c.keyspace_hits
        } else {
            &c.keyspace_misses
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// `proto-max-bulk-len`.
    pub fn max_bulk(&self) -> usize {
        self.srv.config.read().proto_max_bulk_len as usize
    }
}

/// `-ERR unknown command ...` exactly as Redis formats it.
pub fn unknown_command(args: &[Bytes]) -> Reply {
    let name = String::from_utf8_lossy(&args[0]);
    let name: String = name.chars().take(128).collect();
    let mut list = String::new();
    for a in &args[1..] {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        let a = String::from_utf8_lossy(a);
        let a: String = a.chars().take(room).collect();
        list.push_str(&format!("'{a}' "));
    }
    Reply::error(format!(
        "ERR unknown command '{name}', with args beginning with: {list}"
    ))
}

/// `-ERR unknown subcommand ...` exactly as Redis formats it.
pub fn unknown_subcommand(parent: &str, sub: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub)
            .chars()
            .take(128)
            .collect::<String>(),
        parent.to_ascii_uppercase()
    ))
}

fn arity_error(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// Resolves the command (and subcommand) to run and checks arity.
pub fn resolve(args: &[Bytes]) -> Result<&'static CommandSpec, Reply> {
    resolve_looked_up(table::lookup(&args[0]), args)
}

/// [`resolve`] for a caller that already looked the name up (`table::lookup(&args[0])`).
fn resolve_looked_up(
    spec: Option<&'static CommandSpec>,
    args: &[Bytes],
) -> Result<&'static CommandSpec, Reply> {
    let spec = spec.ok_or_else(|| unknown_command(args))?;
    if spec.subcommands.is_empty() {
        if !spec.arity_ok(args.len()) {
            return Err(arity_error(spec.name));
        }
        return Ok(spec);
    }
    if args.len() < 2 {
        if spec.arity_ok(args.len()) {
            return Ok(spec); // COMMAND with no subcommand
        }
        return Err(arity_error(spec.name));
    }
    let Some(sub) = table::lookup_sub(spec, &args[1]) else {
        return Err(unknown_subcommand(spec.name, &args[1]));
    };
    if !sub.arity_ok(args.len()) {
        return Err(arity_error(&format!("{}|{}", spec.name, sub.name)));
    }
    Ok(sub)
}

/// True if running `args` may block for long: an exclusive lock, an admin command, or a
/// write the engine says might wait (an fsync under `appendfsync always`, a write stall,
/// a memtable switch, see `Db::write_may_block`). The connection then leaves the async
/// worker thread for it, so a stall never stops reads, accepts or SIGTERM. Other writes
/// only append to the WAL and run inline.
pub fn may_block(args: &[Bytes], db: &kv_engine::Db) -> bool {
    may_block_looked_up(table::lookup(&args[0]), args, db)
}

/// [`may_block`] for a caller that already looked the name up (`table::lookup(&args[0])`).
pub fn may_block_looked_up(
    spec: Option<&'static CommandSpec>,
    args: &[Bytes],
    db: &kv_engine::Db,
) -> bool {
    match spec {
        Some(s) => {
            s.has(GLOBAL | table::ADMIN)
                || !s.subcommands.is_empty()
                || ((s.has(WRITE) || matches!(s.name, "exec" | "lock"))
                    && db.write_may_block(args.iter().map(|a| a.len()).sum()))
        }
        None => false,
    }
}

/// What the checks before running a command decided.
pub enum Admission {
    /// Run this command now.
    Run(&'static CommandSpec),
    /// Answered already: refused (auth, arity, ACL) or queued by MULTI.
    Done(Reply),
}

/// The transaction of a client's command: named after the client (CLIENT TRACKING's
/// NOLOOP), its commit deferring the WAL write if the client writes the WAL out before
/// it replies ([`Client::defers_wal_writes`]).
fn client_txn<'s>(srv: &'s Shared, client: &Client) -> Txn<'s> {
    let mut txn = Txn::new(&srv.store);
    txn.set_writer(client.info.id);
    if client.defers_wal_writes {
        txn.defer_wal_write();
    }
    txn
}

/// Runs a command for a client: the single entry point of the connection loop.
pub fn execute(srv: &Shared, client: &mut Client, args: &[Bytes]) -> Reply {
    execute_looked_up(srv, client, args, table::lookup(&args[0]))
}

/// [`execute`] for a caller that already looked the name up (`table::lookup(&args[0])`),
/// so a pipelined command's name is looked up once (connection.rs).
pub fn execute_looked_up(
    srv: &Shared,
    client: &mut Client,
    args: &[Bytes],
    looked_up: Option<&'static CommandSpec>,
) -> Reply {
    let spec = match admit_inner(srv, client, args, looked_up) {
        Ok(spec) => spec,
        Err(reply) => return reply,
    };
    let started = Instant::now();
    let reply = run(srv, client, spec, args);
    let elapsed = started.elapsed();
    after_command(srv, client, spec, args, elapsed, &reply);
    reply
}

/// Everything before running a command: authentication, name and arity, the ACL check
/// and MULTI queueing. Shared by the local path ([`execute`]) and the ring path
/// (`crate::cluster_mode`), so a command is admitted the same way on both.
pub fn admit(srv: &Shared, client: &mut Client, args: &[Bytes]) -> Admission {
    match admit_inner(srv, client, args, table::lookup(&args[0])) {
        Ok(spec) => Admission::Run(spec),
        Err(reply) => Admission::Done(reply),
    }
}

/// Admission of a command of a run of pipelined ring reads (cluster_mode/
/// pipelined_reads.rs), whose checks [`groupable`] passed as the run was formed, moments
/// before: authentication, the command's resolution, the ACL and a subscriber's limits.
/// As for a single node's group of pipelined commands ([`execute_group`]), the run is
/// admitted once, at its start; a command's own turn still records it for CLIENT LIST
/// and refuses it while a script is busy. Repeating the rest cost a pipelined ring GET
/// about 300 instructions (docs/performance.md, "A batch's node lookups; a command's
/// reads in a sorted vector").
pub fn admit_in_run(srv: &Shared, client: &mut Client, spec: &'static CommandSpec) -> Admission {
    *client.info.last_cmd.lock() = command_stats::full_name(spec);
    if let Some(Reply::Error(busy)) = srv.scripting.busy.refusal(spec) {
        return Admission::Done(reject(srv, client, Some(spec), busy.into_owned()));
    }
    Admission::Run(spec)
}

/// `spec` is `table::lookup(&args[0])`, done by the caller.
fn admit_inner(
    srv: &Shared,
    client: &mut Client,
    args: &[Bytes],
    spec: Option<&'static CommandSpec>,
) -> Result<&'static CommandSpec, Reply> {
    let in_multi = client.multi.is_some();
    if client.auth_required(srv) && !spec.is_some_and(|s| s.has(NO_AUTH)) {
        return Err(reject(
            srv,
            client,
            spec,
            "NOAUTH Authentication required.".into(),
        ));
    }
    let spec = match resolve_looked_up(spec, args) {
        Ok(s) => s,
        Err(e) => {
            if in_multi {
                client.multi_error = true;
            }
            return Err(e);
        }
    };
    // CLIENT LIST's `cmd=` is the command being run (or queued), set before it runs as
    // Redis sets `lastcmd`: CLIENT INFO shows itself.
    *client.info.last_cmd.lock() = command_stats::full_name(spec);
    let context = if in_multi { "multi" } else { "toplevel" };
    if let Err((denial, user)) = permitted(srv, client, spec, args) {
        log_denial(srv, client, spec, &denial, &user, context);
        let msg = match denial {
            Denial::Command => format!(
                "NOPERM this user has no permissions to run the '{}' command",
                acl::full_name(spec)
            ),
            Denial::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .to_string()
            }
            Denial::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as arguments"
                    .to_string()
            }
        };
        return Err(reject(srv, client, Some(spec), msg));
    }
    if let Some(Reply::Error(busy)) = srv.scripting.busy.refusal(spec) {
        return Err(reject(srv, client, Some(spec), busy.into_owned()));
    }
    if let Some(msg) = pubsub::refused_while_subscribed(client, spec, args) {
        return Err(reject(srv, client, Some(spec), msg));
    }
    if in_multi
        && !matches!(
            spec.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        )
    {
        if spec.has(NO_MULTI) {
            client.multi_error = true;
            return Err(err("ERR Command not allowed inside a transaction"));
        }
        let bytes: usize = args.iter().map(|a| a.len() + 32).sum();
        let limit = srv.config.read().client_query_buffer_limit as usize;
        if let Some(q) = client.multi.as_mut() {
            if q.len() >= transactions::MAX_QUEUED_COMMANDS || client.multi_bytes + bytes > limit {
                client.multi_error = true;
                return Err(err("ERR MULTI queue too large: the transaction would exceed client-query-buffer-limit; discard it and send fewer commands"));
            }
            client.multi_bytes += bytes;
            q.push(args.to_vec());
            client.info.multi.store(q.len() as i64, Ordering::Relaxed);
        }
        return Err(Reply::status("QUEUED"));
    }
    Ok(spec)
}

/// Refuses a command before it runs, as Redis's `rejectCommand`: inside MULTI the
/// transaction is flagged (EXEC will abort), and a refused EXEC discards it.
fn reject(srv: &Shared, client: &mut Client, spec: Option<&CommandSpec>, msg: String) -> Reply {
    if spec.is_some_and(|s| s.name == "exec") {
        transactions::discard_transaction(client, &srv.store);
        return Reply::error(format!("EXECABORT Transaction discarded because of: {msg}"));
    }
    if client.multi.is_some() {
        client.multi_error = true;
    }
    Reply::error(msg)
}

/// The ACL check: `Err` with the refusal and the user's name if the client's user may
/// not run `args`. AUTH, HELLO, QUIT and RESET are allowed to every user.
fn permitted(
    srv: &Shared,
    client: &Client,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Result<(), (Denial, String)> {
    let user = client.acting_user(srv);
    check(&user.perms(), spec, args).map_err(|d| (d, user.name.clone()))
}

/// Records a refused command or key in ACL LOG.
fn log_denial(
    srv: &Shared,
    client: &Client,
    spec: &'static CommandSpec,
    denial: &Denial,
    user: &str,
    context: &'static str,
) {
    let (reason, object) = match denial {
        Denial::Command => (Reason::Command, acl::full_name(spec)),
        Denial::Key(k) => (Reason::Key, String::from_utf8_lossy(k).into_owned()),
        Denial::Channel(c) => (Reason::Channel, String::from_utf8_lossy(c).into_owned()),
    };
    let max = srv.config.read().acllog_max_len as usize;
    let info = acl::log_client_info(srv, &client.info);
    srv.acl.log_denial(reason, context, object, user, info, max);
}

/// Runs one command queued by MULTI, first checking it again: ACL rules may have changed
/// since it was queued (Redis's check in EXEC).
pub fn call_queued(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if let Ok(spec) = resolve(args) {
        if let Err((denial, user)) = permitted(ctx.srv, ctx.client, spec, args) {
            log_denial(ctx.srv, ctx.client, spec, &denial, &user, "multi");
            let why = match denial {
                Denial::Command => "no permission to execute the command or subcommand",
                Denial::Key(_) => "no permission to touch the specified keys",
                Denial::Channel(_) => {
                    "no permission to access one of the channels used as arguments"
                }
            };
            return Reply::error(format!(
                "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {why}"
            ));
        }
    }
    call_inner(ctx, args)
}

/// Which locks a command takes.
enum Plan<'a> {
    Nothing,
    Read { snapshot: bool },
    Keys(Vec<&'a [u8]>),
    Exclusive,
}

fn plan<'a>(spec: &'static CommandSpec, args: &'a [Bytes], client: &'a Client) -> Plan<'a> {
    if spec.has(GLOBAL) {
        return Plan::Exclusive;
    }
    match spec.name {
        "exec" => return exec_plan(client),
        "idempotent" => {
            let inner = &args[2..];
            let mut keys: Vec<&[u8]> = vec![&args[1][..]];
            match table::lookup(&inner[0]) {
                Some(s) if s.has(GLOBAL) => return Plan::Exclusive,
                Some(s) => keys.extend(s.keys(inner).into_iter().map(|k| &k[..])),
                None => {}
            }
            return Plan::Keys(keys);
        }
        _ => {}
    }
    let mut keys = spec.key_args(args).map(|k| &k[..]);
    if spec.has(WRITE) {
        Plan::Keys(keys.collect())
    } else if spec.has(READONLY) {
        Plan::Read {
            snapshot: keys.nth(1).is_some() || spec.has(KEYSPACE),
        }
    } else {
        Plan::Nothing
    }
}

fn exec_plan(client: &Client) -> Plan<'_> {
    let mut keys: Vec<&[u8]> = client.watched.iter().map(|(_, k, _)| &k[..]).collect();
    for q in client.multi.iter().flatten() {
        match resolve(q) {
            Ok(s) if s.has(GLOBAL) || s.has(KEYSPACE) => return Plan::Exclusive,
            Ok(s) if s.name == "idempotent" => {
                keys.push(&q[1]);
                match table::lookup(&q[2]) {
                    Some(i) if i.has(GLOBAL) => return Plan::Exclusive,
                    Some(i) => keys.extend(i.keys(&q[2..]).into_iter().map(|k| &k[..])),
                    None => {}
                }
            }
            Ok(s) => keys.extend(s.keys(q).into_iter().map(|k| &k[..])),
            Err(_) => {}
        }
    }
    Plan::Keys(keys)
}

/// Runs an admitted command on this node's store.
pub fn run(srv: &Shared, client: &mut Client, spec: &'static CommandSpec, args: &[Bytes]) -> Reply {
    let Some(handler) = spec.handler else {
        return server::command_all(srv); // COMMAND without subcommand
    };
    let plan = plan(spec, args, client);
    let mut snapshot = false;
    let read_only = matches!(plan, Plan::Read { .. });
    let _guard: Option<Guard<'_>> = match plan {
        Plan::Nothing => None,
        Plan::Read { snapshot: s } => {
            snapshot = s;
            match lock_or_busy(srv, spec, Vec::new()) {
                Ok(g) => Some(g),
                Err(busy) => return busy,
            }
        }
        Plan::Keys(keys) => match lock_or_busy(srv, spec, keys) {
            Ok(g) => Some(g),
            Err(busy) => return busy,
        },
        Plan::Exclusive => match world_or_busy(srv, spec) {
            Ok(g) => Some(g),
            Err(busy) => return busy,
        },
    };
    let txn = client_txn(srv, client);
    let mut ctx = Ctx { srv, client, txn };
    if snapshot {
        ctx.txn.use_snapshot();
    }
    if read_only {
        ctx.txn.read_only();
    }
    let mut reply = handler(&mut ctx, args).unwrap_or_else(|e| e);
    match ctx.txn.commit() {
        Ok(Some(first)) => reply.resolve_versions(first),
        Ok(None) => {}
        Err(e) => reply = Reply::from(e),
    }
    reply
}

/// How long a command waits for its locks before it looks again whether a script has
/// run past busy-reply-threshold (then it gets -BUSY instead of waiting on).
const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// The shared world lock and the stripes of `keys`, or -BUSY once a script holding the
/// world lock has run past busy-reply-threshold (scripting/busy.rs).
fn lock_or_busy<'s>(
    srv: &'s Shared,
    spec: &CommandSpec,
    keys: Vec<&[u8]>,
) -> Result<Guard<'s>, Reply> {
    loop {
        if let Some(g) = srv.store.try_lock_keys(keys.iter().copied(), BUSY_POLL) {
            return Ok(g);
        }
        if let Some(busy) = srv.scripting.busy.refusal(spec) {
            return Err(busy);
        }
    }
}

/// The exclusive world lock, or -BUSY as [`lock_or_busy`].
fn world_or_busy<'s>(srv: &'s Shared, spec: &CommandSpec) -> Result<Guard<'s>, Reply> {
    loop {
        if let Some(g) = srv.store.try_lock_world(BUSY_POLL) {
            return Ok(g);
        }
        if let Some(busy) = srv.scripting.busy.refusal(spec) {
            return Err(busy);
        }
    }
}

/// Largest total argument bytes of pipelined commands committed as one engine batch,
/// and about the most reply bytes one group builds before they are sent.
const GROUP_MAX_BYTES: usize = 4 << 20;

/// The spec of `args` if it may share one engine batch with its pipeline neighbours: a
/// plain key-based read or write of an authenticated client outside MULTI, that its ACL
/// user may run and that a RESP2 subscriber may send (a refused one runs alone, through
/// `execute`, which replies and logs).
pub(crate) fn groupable(
    srv: &Shared,
    client: &Client,
    args: &[Bytes],
    looked_up: Option<&'static CommandSpec>,
) -> Option<&'static CommandSpec> {
    if client.multi.is_some() || client.auth_required(srv) {
        return None;
    }
    let user = client.acting_user(srv);
    let spec = resolve_looked_up(looked_up, args).ok()?;
    check(&user.perms(), spec, args).ok()?;
    if pubsub::refused_while_subscribed(client, spec, args).is_some() {
        return None;
    }
    let plain = spec.has(WRITE | READONLY)
        && !spec.has(GLOBAL | KEYSPACE | table::ADMIN | NO_MULTI)
        && spec.first_key > 0
        && !matches!(spec.name, "lock" | "watch" | "idempotent");
    plain.then_some(spec)
}

/// Group commit of a pipeline: runs the leading run of plain commands of `cmds` (at least
/// two) as one transaction — with a write among them, their keys locked together, one
/// engine batch, one WAL record — pushing their replies. Each command still sees the
/// writes of the ones before it, exactly as if run one by one. A run of reads only takes
/// the shared lock a lone read takes, and reads one snapshot if one of them names several
/// keys (as a lone MGET does): admission, locking and the transaction are paid once for
/// the run. Returns `Ok(n)` if `n` commands ran, or `Err(k)`: nothing ran, and the next
/// `k` commands are to be run one by one without asking again (a lone command).
/// `looked_up[i]` is `table::lookup(&cmds[i][0])`.
pub fn execute_group(
    srv: &Shared,
    client: &mut Client,
    cmds: &[Vec<Bytes>],
    looked_up: &[Option<&'static CommandSpec>],
    replies: &mut Vec<Reply>,
) -> Result<usize, usize> {
    let mut specs = Vec::new();
    let mut bytes = 0;
    for (args, &spec) in cmds.iter().zip(looked_up) {
        let Some(spec) = groupable(srv, client, args, spec) else {
            break;
        };
        specs.push(spec);
        bytes += args.iter().map(|a| a.len()).sum::<usize>();
        if bytes > GROUP_MAX_BYTES {
            break;
        }
    }
    if specs.len() < 2 {
        return Err(specs.len().max(1));
    }
    let reads_only = !specs.iter().any(|s| s.has(WRITE));
    let keys: Vec<&[u8]> = if reads_only {
        Vec::new()
    } else {
        specs
            .iter()
            .zip(cmds)
            .flat_map(|(s, a)| s.key_args(a).map(|k| &k[..]))
            .collect()
    };
    // A script busy past its threshold: the commands run one by one, each getting -BUSY.
    let Ok(_guard) = lock_or_busy(srv, specs[0], keys) else {
        return Err(specs.len());
    };
    let txn = client_txn(srv, client);
    let mut ctx = Ctx { srv, client, txn };
    if reads_only {
        ctx.txn.read_only();
        if specs
            .iter()
            .zip(cmds)
            .any(|(s, a)| s.key_args(a).nth(1).is_some())
        {
            ctx.txn.use_snapshot();
        }
    }
    // Every key of the group is known before the first command runs: their lookups'
    // cache misses can overlap (docs/performance.md, "Replies in bursts, lookups that
    // end at the bucket").
    let group_keys = specs.iter().zip(cmds).flat_map(|(s, a)| s.key_args(a));
    ctx.txn.prefetch(ctx.client.db, group_keys.map(|k| &k[..]));
    let first_reply = replies.len();
    // Replies are kept until the group ends: past GROUP_MAX_BYTES of them the group stops
    // and the rest of the pipeline runs after they were sent, so a pipeline of reads of
    // a large value cannot build its replies in memory before the output buffer limit
    // is checked (tests/tests/attacks.rs).
    let mut reply_bytes = 0;
    let mut ran = 0;
    // One clock read per command: each command's end is the next one's start (its time
    // then includes the previous command's bookkeeping, well under a microsecond).
    let mut started = Instant::now();
    for (spec, args) in specs.iter().zip(cmds) {
        let reply = match spec.handler {
            Some(h) => h(&mut ctx, args).unwrap_or_else(|e| e),
            None => server::command_all(srv),
        };
        let ended = Instant::now();
        after_command(srv, ctx.client, spec, args, ended - started, &reply);
        started = ended;
        reply_bytes += reply.approx_len();
        replies.push(reply);
        ran += 1;
        if reply_bytes > GROUP_MAX_BYTES || ctx.client.close {
            break;
        }
    }
    match ctx.txn.commit() {
        Ok(Some(first)) => replies[first_reply..]
            .iter_mut()
            .for_each(|r| r.resolve_versions(first)),
        Ok(None) => {}
        Err(e) => {
            let e = Reply::from(e);
            replies[first_reply..]
                .iter_mut()
                .for_each(|r| *r = e.clone());
        }
    }
    Ok(ran)
}

/// Runs one command inside an EXEC or IDEMPOTENT, sharing the caller's transaction.
/// Nothing waits in there: a `LOCK ... WAIT` that would block replies nil at once.
pub fn call_inner(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let reply = match resolve(args) {
        Ok(spec) => {
            let reply = match spec.handler {
                Some(h) => h(ctx, args).unwrap_or_else(|e| e),
                None => server::command_all(ctx.srv),
            };
            crate::pubsub::note_reads(ctx.srv, ctx.client, spec, args);
            reply
        }
        Err(e) => e,
    };
    ctx.client.wait = None;
    reply
}

/// Bookkeeping after a command ran: counters, per-command metrics, the slow log, the
/// MONITOR feed and the keys a tracking client read.
pub fn after_command(
    srv: &Shared,
    client: &mut Client,
    spec: &'static CommandSpec,
    args: &[Bytes],
    elapsed: std::time::Duration,
    reply: &Reply,
) {
    srv.counters.commands.fetch_add(1, Ordering::Relaxed);
    // The command's dense id, looked up once for the three per-command counters.
    let id = crate::acl::categories::index().id(spec);
    srv.command_metrics.record(id, elapsed, reply.is_error());
    crate::pubsub::after_command(srv, client, spec, args);
    *client.info.last_cmd.lock() = command_stats::full_name_by_id(spec, id);
    let micros = elapsed.as_micros() as u64;
    srv.command_stats.record(id, micros);
    let (threshold, max_len) = {
        let c = srv.config.read();
        (c.slowlog_log_slower_than, c.slowlog_max_len)
    };
    if threshold >= 0 && micros >= threshold as u64 && !spec.has(table::SKIP_SLOWLOG) {
        let mut log = srv.slowlog.lock();
        let id = log.next_id;
        log.next_id += 1;
        log.entries.push_front(SlowEntry {
            id,
            time: crate::keyspace::now_ms() / 1000,
            micros,
            args: redact::shown_args(args, redact::SLOWLOG),
            addr: client.info.addr.clone(),
            name: client.info.name.lock().clone(),
        });
        log.entries.truncate(max_len as usize);
    }
    if micros > 500_000 {
        tracing::warn!(command = spec.name, millis = micros / 1000, "slow command");
    }
    if srv.monitors.load(Ordering::Relaxed) > 0 && !spec.has(table::ADMIN) {
        feed_monitor(srv, client, args);
    }
}

fn feed_monitor(srv: &Shared, client: &Client, args: &[Bytes]) {
    let shown = redact::shown_args(args, redact::MONITOR);
    send_monitor_line(srv, &client.db.to_string(), &client.info.addr, &shown);
}

/// Sends one MONITOR line, `+<unix time> [<db> <origin>] "arg" ...`, escaping each
/// argument as Redis does. The ring path also feeds the replica operations a node serves
/// for other coordinators through it (origin `replica`).
pub fn send_monitor_line(srv: &Shared, db: &str, origin: &str, args: &[Bytes]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut line = format!(
        "+{}.{:06} [{} {}]",
        now.as_secs(),
        now.subsec_micros(),
        db,
        origin
    );
    for a in args {
        line.push_str(" \"");
        for &b in a.iter() {
            match b {
                b'\\' => line.push_str("\\\\"),
                b'"' => line.push_str("\\\""),
                b'\n' => line.push_str("\\n"),
                b'\r' => line.push_str("\\r"),
                b'\t' => line.push_str("\\t"),
                7 => line.push_str("\\a"),
                8 => line.push_str("\\b"),
                0x20..=0x7e => line.push(b as char),
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    line.push_str("\\x");
                    line.push(HEX[(b >> 4) as usize] as char);
                    line.push(HEX[(b & 15) as usize] as char);
                }
            }
        }
        line.push('"');
    }
    line.push_str("\r\n");
    let _ = srv.monitor.send(Bytes::from(line));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(parts: &[&str]) -> Vec<Bytes> {
        parts.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    #[test]
    fn unknown_command_text_matches_redis() {
        assert_eq!(
            unknown_command(&a(&["foo", "a", "b"])),
            Reply::error("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
        );
        assert_eq!(
            unknown_command(&a(&["foo"])),
            Reply::error("ERR unknown command 'foo', with args beginning with: ")
        );
    }

    #[test]
    fn arity_and_subcommand_errors() {
        assert_eq!(
            resolve(&a(&["GET"])).unwrap_err(),
            Reply::error("ERR wrong number of arguments for 'get' command")
        );
        assert_eq!(
            resolve(&a(&["client", "setname"])).unwrap_err(),
            Reply::error("ERR wrong number of arguments for 'client|setname' command")
        );
        assert_eq!(
            resolve(&a(&["client", "bogus"])).unwrap_err(),
            Reply::error("ERR unknown subcommand 'bogus'. Try CLIENT HELP.")
        );
        assert_eq!(
            resolve(&a(&["client"])).unwrap_err(),
            Reply::error("ERR wrong number of arguments for 'client' command")
        );
        assert!(resolve(&a(&["command"])).is_ok());
    }
}

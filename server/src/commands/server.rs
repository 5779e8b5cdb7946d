//! Server commands: INFO, CONFIG, COMMAND, DBSIZE, FLUSHDB/FLUSHALL, SWAPDB, TIME,
//! LASTSAVE, SAVE/BGSAVE, SHUTDOWN, SLOWLOG, MONITOR.

use super::args::{err, glob_match, int, is, text, SYNTAX};
use super::connection::help;
use super::info_fields;
use super::table::{self, CommandSpec, COMMANDS};
use super::{CmdResult, Ctx};
use crate::config::{all_params, param};
use crate::protocol::Reply;
use crate::state::Shared;
use bytes::Bytes;
use std::sync::atomic::Ordering;

fn s(x: impl Into<String>) -> Reply {
    Reply::bulk(Bytes::from(x.into()))
}

/// SWAPDB index1 index2
pub fn swapdb(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let n = ctx.srv.store.databases() as i64;
    let x = int(&a[1]).map_err(|_| err("ERR invalid first DB index"))?;
    let y = int(&a[2]).map_err(|_| err("ERR invalid second DB index"))?;
    if x < 0 || x >= n || y < 0 || y >= n {
        return Err(err("ERR DB index is out of range"));
    }
    if x != y {
        ctx.txn.swap_db(x as usize, y as usize)?;
    }
    Ok(Reply::Ok)
}

fn flush_mode(a: &[Bytes]) -> Result<(), Reply> {
    match a.len() {
        1 => Ok(()),
        2 if is(&a[1], "async") || is(&a[1], "sync") => Ok(()),
        _ => Err(err(SYNTAX)),
    }
}

/// FLUSHDB [ASYNC|SYNC]
pub fn flushdb(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    flush_mode(a)?;
    let db = ctx.db();
    ctx.txn.flush_db(db)?;
    Ok(Reply::Ok)
}

/// FLUSHALL [ASYNC|SYNC]
pub fn flushall(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    flush_mode(a)?;
    for db in 0..ctx.srv.store.databases() {
        ctx.txn.flush_db(db)?;
    }
    Ok(Reply::Ok)
}

/// Live keys and keys with an expiry in `db`.
/// DBSIZE: the kept count (keys/key_counts.rs), O(1); like Redis's it includes expired
/// keys that expiry has not removed yet.
pub fn dbsize(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.txn.key_count(ctx.db())?.keys))
}

/// TIME
pub fn time(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let _ = ctx;
    Ok(Reply::Array(vec![
        s(now.as_secs().to_string()),
        s(now.subsec_micros().to_string()),
    ]))
}

/// LASTSAVE
pub fn lastsave(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.srv.last_save.load(Ordering::Relaxed)))
}

fn durable_flush(ctx: &Ctx<'_>) -> Result<(), Reply> {
    ctx.srv.store.db.flush()?;
    ctx.srv.store.db.sync_wal()?;
    ctx.srv
        .last_save
        .store(ctx.txn.now / 1000, Ordering::Relaxed);
    Ok(())
}

/// SAVE: flushes the memtable and fsyncs the WAL.
pub fn save(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    durable_flush(ctx)?;
    Ok(Reply::Ok)
}

/// BGSAVE [SCHEDULE]: same as SAVE (it is quick: a memtable flush), then replies.
pub fn bgsave(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() > 2 || (a.len() == 2 && !is(&a[1], "schedule")) {
        return Err(err(SYNTAX));
    }
    durable_flush(ctx)?;
    Ok(Reply::status("Background saving started"))
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]
pub fn shutdown(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let (mut abort, mut nosave) = (false, false);
    for x in &a[1..] {
        if is(x, "abort") {
            abort = true;
        } else if is(x, "nosave") {
            nosave = true;
        } else if !(is(x, "save") || is(x, "now") || is(x, "force")) {
            return Err(err(SYNTAX));
        }
    }
    if abort {
        return Err(err("ERR No shutdown in progress."));
    }
    // A running script is stopped (its writes dropped) before the server stops; past
    // busy-reply-threshold only SHUTDOWN NOSAVE may do that, as in Redis.
    ctx.srv.scripting.busy.shutdown(nosave)?;
    tracing::info!(client = %ctx.client.info.addr, "SHUTDOWN requested");
    ctx.srv.shutdown.trigger();
    ctx.client.close = true;
    ctx.client.silent = true;
    Ok(Reply::Ok)
}

/// MONITOR
pub fn monitor(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    ctx.client.monitor = true;
    Ok(Reply::Ok)
}

/// SLOWLOG GET [count]
pub fn slowlog_get(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let count = match a.get(2) {
        Some(c) => {
            let n = int(c)?;
            if n < -1 {
                return Err(err("ERR count should be greater than or equal to -1"));
            }
            if n == -1 {
                usize::MAX
            } else {
                n as usize
            }
        }
        None => 10,
    };
    let log = ctx.srv.slowlog.lock();
    Ok(Reply::Array(
        log.entries
            .iter()
            .take(count)
            .map(|e| {
                Reply::Array(vec![
                    Reply::Int(e.id as i64),
                    Reply::Int(e.time),
                    Reply::Int(e.micros as i64),
                    Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
                    s(e.addr.clone()),
                    s(e.name.clone()),
                ])
            })
            .collect(),
    ))
}

/// SLOWLOG LEN
pub fn slowlog_len(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.srv.slowlog.lock().entries.len() as i64))
}

/// SLOWLOG RESET
pub fn slowlog_reset(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    ctx.srv.slowlog.lock().entries.clear();
    Ok(Reply::Ok)
}

/// SLOWLOG HELP
pub fn slowlog_help(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help(
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    ))
}

/// CONFIG GET parameter [parameter ...]
pub fn config_get(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let c = ctx.srv.config.read();
    let mut out = Vec::new();
    for p in all_params() {
        if a[2..]
            .iter()
            .any(|pat| glob_match(pat, p.name.as_bytes(), true))
        {
            out.push((s(p.name), s((p.get)(&c))));
        }
    }
    Ok(Reply::Map(out))
}

/// CONFIG SET parameter value [parameter value ...]
pub fn config_set(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    if !a.len().is_multiple_of(2) {
        return Err(err(
            "ERR wrong number of arguments for 'config|set' command",
        ));
    }
    let pairs: Vec<(String, String)> = a[2..]
        .chunks(2)
        .map(|p| (text(&p[0]), text(&p[1])))
        .collect();
    set_config(ctx.srv, &pairs)?;
    Ok(Reply::Ok)
}

/// Applies `name value` pairs as CONFIG SET does, all or none; the error is the reply.
/// Also how a cluster node applies a cluster-wide parameter set through another node.
pub fn set_config(srv: &Shared, pairs: &[(String, String)]) -> Result<(), Reply> {
    let mut next = srv.config.read().clone();
    for (name, value) in pairs {
        let name = name.clone();
        let Some(p) = param(&name) else {
            return Err(Reply::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        if !p.mutable {
            return Err(Reply::error(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config")));
        }
        (p.set)(&mut next, value).map_err(|e| {
            Reply::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {e}"
            ))
        })?;
    }
    let requested = next.maxclients;
    if requested > srv.config.read().maxclients {
        // The descriptors must exist too (Redis refuses the same way).
        let fit = crate::fd_limit::fit_clients(requested).map_err(|e| {
            Reply::error(format!(
                "ERR CONFIG SET failed (possibly related to argument 'maxclients') - {e}"
            ))
        })?;
        if fit < requested {
            return Err(Reply::error(format!("ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating system is not able to handle the specified number of clients, try with {fit}")));
        }
    }
    // requirepass moves onto the default user; protected mode refuses opening changes.
    let _acl = srv
        .acl
        .config_changing(&srv.config, &next)
        .map_err(|e| Reply::error(format!("ERR {e}")))?;
    srv.store
        .filter()
        .idem_window_ms
        .store(next.idempotency_window_ms, Ordering::Relaxed);
    *srv.config.write() = next;
    Ok(())
}

/// CONFIG RESETSTAT
pub fn config_resetstat(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let c = &ctx.srv.counters;
    for x in [
        &c.commands,
        &c.connections,
        &c.rejected,
        &c.expired_keys,
        &c.keyspace_hits,
        &c.keyspace_misses,
        &c.net_input,
        &c.net_output,
        &c.idempotent_replays,
        &c.expired_idempotency_records,
        &c.protocol_errors,
        &c.output_limit_disconnects,
        &c.pipelined_reads_ahead,
        &c.pipelined_writes_grouped,
        &c.lock_wait_reads,
    ] {
        x.store(0, Ordering::Relaxed);
    }
    ctx.srv.slowlog.lock().entries.clear();
    ctx.srv.acl.denied.reset();
    ctx.srv.command_stats.reset();
    Ok(Reply::Ok)
}

/// CONFIG REWRITE (not supported)
pub fn config_rewrite(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Err(err(
        "ERR CONFIG REWRITE is not supported by kvd; edit the config file",
    ))
}

/// CONFIG HELP
pub fn config_help(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
        ],
    ))
}

/// ACL categories, derived once from the table (`crate::acl::categories`).
fn categories(c: &CommandSpec) -> Vec<Reply> {
    crate::acl::categories::index()
        .category_names(c)
        .into_iter()
        .map(Reply::status)
        .collect()
}

fn key_specs(c: &CommandSpec) -> Reply {
    if c.first_key <= 0 {
        return Reply::Array(vec![]);
    }
    let st = |x: &str| Reply::status(x.to_string());
    Reply::Array(vec![Reply::Map(vec![
        (
            st("flags"),
            Reply::Set(vec![st(if c.has(table::WRITE) { "RW" } else { "RO" })]),
        ),
        (
            st("begin_search"),
            Reply::Map(vec![
                (st("type"), st("index")),
                (
                    st("spec"),
                    Reply::Map(vec![(st("index"), Reply::Int(c.first_key as i64))]),
                ),
            ]),
        ),
        (
            st("find_keys"),
            Reply::Map(vec![
                (st("type"), st("range")),
                (
                    st("spec"),
                    Reply::Map(vec![
                        (
                            st("lastkey"),
                            Reply::Int(if c.last_key < 0 {
                                c.last_key as i64
                            } else {
                                (c.last_key - c.first_key) as i64
                            }),
                        ),
                        (st("keystep"), Reply::Int(c.step as i64)),
                        (st("limit"), Reply::Int(0)),
                    ]),
                ),
            ]),
        ),
    ])])
}

fn full_name(parent: Option<&CommandSpec>, c: &CommandSpec) -> String {
    match parent {
        Some(p) => format!("{}|{}", p.name, c.name),
        None => c.name.to_string(),
    }
}

fn command_info_reply(parent: Option<&CommandSpec>, c: &CommandSpec) -> Reply {
    Reply::Array(vec![
        s(full_name(parent, c)),
        Reply::Int(c.arity as i64),
        Reply::Set(c.flag_names().into_iter().map(Reply::status).collect()),
        Reply::Int(c.first_key as i64),
        Reply::Int(c.last_key as i64),
        Reply::Int(c.step as i64),
        Reply::Set(categories(c)),
        Reply::Array(vec![]),
        key_specs(c),
        Reply::Array(
            c.subcommands
                .iter()
                .map(|sc| command_info_reply(Some(c), sc))
                .collect(),
        ),
    ])
}

fn command_docs_reply(parent: Option<&CommandSpec>, c: &CommandSpec) -> Reply {
    let mut m = vec![
        (s("summary"), s(c.summary)),
        (s("since"), s(c.since)),
        (s("group"), s(c.group)),
    ];
    if !c.subcommands.is_empty() {
        m.push((
            s("subcommands"),
            Reply::Map(
                c.subcommands
                    .iter()
                    .map(|sc| (s(full_name(Some(c), sc)), command_docs_reply(Some(c), sc)))
                    .collect(),
            ),
        ));
    }
    let _ = parent;
    Reply::Map(m)
}

/// COMMAND (no subcommand): info of every command.
pub fn command_all(_srv: &Shared) -> Reply {
    Reply::Array(
        COMMANDS
            .iter()
            .map(|c| command_info_reply(None, c))
            .collect(),
    )
}

/// COMMAND COUNT
pub fn command_count(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(COMMANDS.len() as i64))
}

fn find(name: &[u8]) -> Option<(Option<&'static CommandSpec>, &'static CommandSpec)> {
    let n = text(name);
    match n.split_once('|') {
        Some((p, sub)) => {
            let parent = table::lookup(p.as_bytes())?;
            Some((Some(parent), table::lookup_sub(parent, sub.as_bytes())?))
        }
        None => table::lookup(name).map(|c| (None, c)),
    }
}

/// COMMAND INFO [command ...]
pub fn command_info(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() == 2 {
        return Ok(command_all(ctx.srv));
    }
    Ok(Reply::Array(
        a[2..]
            .iter()
            .map(|n| find(n).map_or(Reply::Nil, |(p, c)| command_info_reply(p, c)))
            .collect(),
    ))
}

/// COMMAND DOCS [command ...]
pub fn command_docs(_ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let all: Vec<(Option<&CommandSpec>, &CommandSpec)> = if a.len() == 2 {
        COMMANDS.iter().map(|c| (None, c)).collect()
    } else {
        a[2..].iter().filter_map(|n| find(n)).collect()
    };
    Ok(Reply::Map(
        all.into_iter()
            .map(|(p, c)| (s(full_name(p, c)), command_docs_reply(p, c)))
            .collect(),
    ))
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT cat | PATTERN pattern]
pub fn command_list(_ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let filter: Box<dyn Fn(&CommandSpec) -> bool> = match a.len() {
        2 => Box::new(|_| true),
        5 if is(&a[2], "filterby") => {
            let v = a[4].clone();
            if is(&a[3], "pattern") {
                Box::new(move |c| glob_match(&v, c.name.as_bytes(), true))
            } else if is(&a[3], "aclcat") {
                let cat = format!("@{}", text(&v).to_ascii_lowercase());
                Box::new(move |c| categories(c).contains(&Reply::status(cat.clone())))
            } else if is(&a[3], "module") {
                Box::new(|_| false)
            } else {
                return Err(err(SYNTAX));
            }
        }
        _ => return Err(err(SYNTAX)),
    };
    Ok(Reply::Array(
        COMMANDS
            .iter()
            .filter(|c| filter(c))
            .map(|c| s(c.name))
            .collect(),
    ))
}

/// COMMAND GETKEYS command [arg ...]
pub fn command_getkeys(_ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let inner = &a[2..];
    let Some(c) = table::lookup(&inner[0]) else {
        return Err(err("ERR Invalid command specified"));
    };
    let spec = if !c.subcommands.is_empty() && inner.len() > 1 {
        table::lookup_sub(c, &inner[1]).unwrap_or(c)
    } else {
        c
    };
    if !spec.arity_ok(inner.len()) {
        return Err(err("ERR Invalid number of arguments specified for command"));
    }
    let keys = spec.keys(inner);
    if keys.is_empty() {
        return Err(err("ERR The command has no key arguments"));
    }
    Ok(Reply::Array(
        keys.into_iter().cloned().map(Reply::Bulk).collect(),
    ))
}

/// COMMAND HELP
pub fn command_help(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help(
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
        ],
    ))
}

/// Sections INFO prints with no argument or `default`, in Redis 7's order (kvd adds
/// `engine`).
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
    "engine",
];

/// Which sections `INFO <args>` asks for: `all` adds commandstats and latencystats to the
/// default ones, `everything` also modules' own sections (kvd has none).
fn info_wanted(args: &[Bytes]) -> Vec<String> {
    let mut wanted: Vec<String> = args.iter().map(|x| text(x).to_ascii_lowercase()).collect();
    if wanted.is_empty() {
        wanted.push("default".into());
    }
    let mut out = Vec::new();
    for w in wanted {
        match w.as_str() {
            "default" => out.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
            "all" | "everything" => {
                out.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
                out.extend(["commandstats".into(), "latencystats".into()]);
            }
            _ => out.push(w),
        }
    }
    out
}

/// INFO [section ...]
pub fn info(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let wanted = info_wanted(&a[1..]);
    let want = |name: &str| wanted.iter().any(|w| w == name);
    let srv = ctx.srv;
    let cfg = srv.config.read().clone();
    let mut out = String::new();
    let mut section = |title: &str, lines: Vec<(String, String)>| {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str(&format!("# {title}\r\n"));
        for (k, v) in lines {
            out.push_str(&format!("{k}:{v}\r\n"));
        }
    };
    let kv = |k: &str, v: String| (k.to_string(), v);
    let uptime = srv.started.elapsed().as_secs();
    if want("server") {
        let mut lines = vec![
            kv("redis_version", cfg.compat_version.text().into()),
            kv("kvd_version", env!("CARGO_PKG_VERSION").into()),
            kv("redis_mode", super::cluster_compat::redis_mode(&cfg).into()),
            kv("os", info_fields::os_line()),
            kv("arch_bits", "64".into()),
            kv("multiplexing_api", "tokio".into()),
            kv("process_id", std::process::id().to_string()),
            kv("run_id", srv.run_id.clone()),
            kv("tcp_port", cfg.port.to_string()),
            kv("uptime_in_seconds", uptime.to_string()),
            kv("uptime_in_days", (uptime / 86400).to_string()),
            kv("hz", cfg.hz.to_string()),
        ];
        lines.extend(info_fields::server_build_lines());
        lines.extend(info_fields::server_clock_lines(ctx.txn.now, cfg.hz));
        section(
            "Server",
            lines
                .into_iter()
                .chain([
                    kv(
                        "executable",
                        std::env::current_exe()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default(),
                    ),
                    kv(
                        "config_file",
                        cfg.config_file
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default(),
                    ),
                ])
                .collect(),
        );
    }
    let c = &srv.counters;
    if want("clients") {
        section(
            "Clients",
            vec![
                kv("connected_clients", srv.clients.lock().len().to_string()),
                kv("cluster_connections", "0".into()),
                kv("maxclients", cfg.maxclients.to_string()),
            ]
            .into_iter()
            .chain(info_fields::clients_lines())
            .chain([kv(
                "blocked_clients",
                c.blocked_clients.load(Ordering::Relaxed).to_string(),
            )])
            .chain(info_fields::clients_tail_lines(
                srv.store.events.tracking.clients(),
            ))
            .collect(),
        );
    }
    let es = srv.store.db.stats();
    if want("memory") {
        section(
            "Memory",
            info_fields::memory_lines(es.memtable_bytes + es.block_cache_bytes),
        );
    }
    if want("persistence") {
        section(
            "Persistence",
            vec![
                kv("loading", "0".into()),
                kv("rdb_changes_since_last_save", "0".into()),
                kv("rdb_bgsave_in_progress", "0".into()),
                kv(
                    "rdb_last_save_time",
                    srv.last_save.load(Ordering::Relaxed).to_string(),
                ),
                kv("rdb_last_bgsave_status", "ok".into()),
                kv("aof_enabled", "1".into()),
                kv("aof_rewrite_in_progress", "0".into()),
                kv(
                    "aof_last_write_status",
                    if es.background_error.is_some() {
                        "err"
                    } else {
                        "ok"
                    }
                    .into(),
                ),
                kv(
                    "appendfsync",
                    (crate::config::param("appendfsync").map(|p| (p.get)(&cfg)))
                        .unwrap_or_default(),
                ),
            ],
        );
    }
    if want("stats") {
        let r = |x: &std::sync::atomic::AtomicU64| x.load(Ordering::Relaxed).to_string();
        use crate::pubsub::Kind;
        let distinct = |kind| srv.pubsub.distinct(kind).to_string();
        section(
            "Stats",
            vec![
                kv("total_connections_received", r(&c.connections)),
                kv("total_commands_processed", r(&c.commands)),
                kv("total_net_input_bytes", r(&c.net_input)),
                kv("total_net_output_bytes", r(&c.net_output)),
                kv("rejected_connections", r(&c.rejected)),
                kv("expired_keys", r(&c.expired_keys)),
                kv("evicted_keys", "0".into()),
                kv("keyspace_hits", r(&c.keyspace_hits)),
                kv("keyspace_misses", r(&c.keyspace_misses)),
                kv("pubsub_channels", distinct(Kind::Channel)),
                kv("pubsub_patterns", distinct(Kind::Pattern)),
                kv("pubsubshard_channels", distinct(Kind::Shard)),
                kv("total_error_replies", "0".into()),
                kv("acl_access_denied_auth", r(&ctx.srv.acl.denied.auth)),
                kv("acl_access_denied_cmd", r(&ctx.srv.acl.denied.cmd)),
                kv("acl_access_denied_key", r(&ctx.srv.acl.denied.key)),
                kv("acl_access_denied_channel", r(&ctx.srv.acl.denied.channel)),
                kv("protocol_errors", r(&c.protocol_errors)),
                kv(
                    "client_output_buffer_limit_disconnections",
                    r(&c.output_limit_disconnects),
                ),
                kv("idempotent_replays", r(&c.idempotent_replays)),
                kv("pipelined_reads_ahead", r(&c.pipelined_reads_ahead)),
                kv("pipelined_writes_grouped", r(&c.pipelined_writes_grouped)),
                kv("lock_wait_reads", r(&c.lock_wait_reads)),
                kv(
                    "expired_idempotency_records",
                    r(&c.expired_idempotency_records),
                ),
            ],
        );
    }
    if want("replication") {
        section("Replication", info_fields::replication_lines(&srv.run_id));
    }
    if want("cpu") {
        section("CPU", info_fields::cpu_lines());
    }
    if want("modules") {
        section("Modules", Vec::new());
    }
    if want("commandstats") {
        section("Commandstats", srv.command_stats.info_lines());
    }
    // kvd counts no errors by kind and no latency percentiles: the sections are there,
    // empty, so parsers that expect them find them (docs/compatibility.md).
    if want("errorstats") {
        section("Errorstats", Vec::new());
    }
    if want("latencystats") {
        section("Latencystats", Vec::new());
    }
    if want("cluster") {
        // 0 on a kvd cluster too unless cluster-compat is on: clients see one standalone
        // server (HELLO's `mode`); the ring routes keys itself, so they need not speak
        // the Redis Cluster protocol. Cluster clients check for 1 before CLUSTER SLOTS.
        let enabled = if cfg.cluster.compat { "1" } else { "0" };
        section("Cluster", vec![kv("cluster_enabled", enabled.into())]);
    }
    if want("keyspace") {
        let mut lines = Vec::new();
        for db in 0..srv.store.databases() {
            let count = ctx.txn.key_count(db)?;
            let (keys, expires) = (count.keys, count.expires);
            if keys > 0 {
                lines.push(kv(
                    &format!("db{db}"),
                    format!("keys={keys},expires={expires},avg_ttl=0"),
                ));
            }
        }
        section("Keyspace", lines);
    }
    if want("engine") {
        let mut lines = vec![
            kv("engine_last_sequence", es.last_sequence.to_string()),
            kv("engine_memtable_bytes", es.memtable_bytes.to_string()),
            kv(
                "engine_immutable_memtables",
                es.immutable_memtables.to_string(),
            ),
            kv(
                "engine_pending_compaction_bytes",
                es.pending_compaction_bytes.to_string(),
            ),
            kv(
                "engine_user_bytes_written",
                es.user_bytes_written.to_string(),
            ),
            kv("engine_wal_bytes_written", es.wal_bytes_written.to_string()),
            kv("engine_write_groups", es.write_groups.to_string()),
            kv("engine_wal_syncs", es.wal_syncs.to_string()),
            kv("engine_range_tombstones", es.range_tombstones.to_string()),
            kv(
                "engine_flush_bytes_written",
                es.flush_bytes_written.to_string(),
            ),
            kv(
                "engine_compaction_bytes_written",
                es.compaction_bytes_written.to_string(),
            ),
            kv(
                "engine_compaction_bytes_read",
                es.compaction_bytes_read.to_string(),
            ),
            kv(
                "engine_write_amplification",
                format!("{:.2}", es.write_amplification),
            ),
            kv("engine_flushes", es.flushes.to_string()),
            kv("engine_compactions", es.compactions.to_string()),
            kv(
                "engine_compactions_running",
                es.compactions_running.to_string(),
            ),
            // What `kvtool compact --addr` watches while COMPACT runs.
            kv(
                "compaction_running",
                u8::from(es.compactions_running > 0).to_string(),
            ),
            kv("engine_stall_slowdowns", es.stall_slowdowns.to_string()),
            kv("engine_stall_stops", es.stall_stops.to_string()),
            kv("engine_stall_micros", es.stall_micros.to_string()),
            kv("engine_bloom_checks", es.bloom_checks.to_string()),
            kv("engine_bloom_negatives", es.bloom_negatives.to_string()),
            kv(
                "engine_bloom_false_positives",
                es.bloom_false_positives.to_string(),
            ),
            kv("engine_block_cache_hits", es.block_cache_hits.to_string()),
            kv(
                "engine_block_cache_misses",
                es.block_cache_misses.to_string(),
            ),
            kv("engine_block_cache_bytes", es.block_cache_bytes.to_string()),
            kv("engine_snapshots", es.snapshots.to_string()),
            kv(
                "engine_background_error",
                es.background_error.clone().unwrap_or_default(),
            ),
            kv(
                "engine_background_error_retryable",
                (es.background_error_retryable as u8).to_string(),
            ),
            kv(
                "engine_background_error_resume_attempts",
                es.background_error_resume_attempts.to_string(),
            ),
            kv(
                "engine_background_error_resumes",
                es.background_error_resumes.to_string(),
            ),
        ];
        for l in &es.levels {
            lines.push(kv(
                &format!("engine_level{}", l.level),
                format!("files={},bytes={}", l.files, l.bytes),
            ));
        }
        section("Engine", lines);
    }
    Ok(Reply::Verbatim(out))
}

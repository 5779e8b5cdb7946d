//! Running one compiled script or function: KEYS and ARGV, the per-run `redis.call`
//! (scoped to this command's context, so the script's commands share its transaction),
//! the busy state other connections see, and the reply — or the error with Redis's
//! `script: <name>, on <source>:<line>.` suffix.
//!
//! Atomicity: the caller holds the exclusive world lock (EVAL and FCALL are `GLOBAL` in
//! the command table), so nothing else reads or writes while the script runs, and every
//! write of the script goes into the command's one transaction: one engine batch, one
//! WAL record, committed by the dispatcher after the script returns. A script that fails
//! after writing keeps its writes, as in Redis; one stopped by a shutdown loses them.

use crate::commands::{CmdResult, Ctx};
use crate::keyspace::Txn;
use crate::protocol::Reply;
use crate::scripting::api::CALL_SLOT;
use crate::scripting::busy::Stop;
use crate::scripting::call::{script_acl_check, script_call, string_table, Permissions};
use crate::scripting::convert::lua_to_reply;
use crate::scripting::ring::RingScope;
use crate::scripting::sandbox::Vm;
use bytes::Bytes;
use mlua::{Function, MultiValue, Table, Value};
use std::sync::atomic::Ordering;

/// One run.
pub struct Run<'a> {
    /// The compiled script (an EVAL body or a registered function).
    pub func: &'a Function,
    /// How errors name it: the SHA-1 of an EVAL body, or the function's name.
    pub name: &'a str,
    /// KEYS.
    pub keys: &'a [Bytes],
    /// ARGV.
    pub args: &'a [Bytes],
    /// What it may do.
    pub perms: Permissions,
    /// FCALL (true) or EVAL: which kill command -BUSY names.
    pub is_function: bool,
}

impl<'a> Run<'a> {
    /// A run of `func` for EVAL-style arguments `a` (name, numkeys, keys, args) with `n`
    /// keys; `read_only` from the command (`*_RO`) or the script's flags.
    pub fn from_args(
        func: &'a Function,
        name: &'a str,
        a: &'a [Bytes],
        n: usize,
        read_only: bool,
        is_function: bool,
    ) -> Run<'a> {
        Run {
            func,
            name,
            keys: &a[3..3 + n],
            args: &a[3 + n..],
            perms: Permissions {
                read_only,
                ring: None,
            },
            is_function,
        }
    }
}

/// Runs `run` for the command in `ctx`.
pub fn run_script(ctx: &mut Ctx<'_>, vm: &Vm, mut run: Run<'_>) -> CmdResult {
    let lua = &vm.lua;
    if ctx.srv.ring.get().is_some() {
        run.perms.ring = Some(RingScope {
            db: ctx.client.db,
            keys: run.keys.to_vec(),
        });
    }
    // EVAL bodies read KEYS and ARGV as globals; functions get them as arguments.
    let setup = |lua: &mlua::Lua| -> mlua::Result<(Value, Value)> {
        let keys = string_table(lua, run.keys)?;
        let args = string_table(lua, run.args)?;
        let limit = ctx.srv.config.read().lua_memory_limit as usize;
        lua.set_memory_limit(limit)?;
        if run.is_function {
            return Ok((Value::Table(keys), Value::Table(args)));
        }
        vm.globals.raw_set("KEYS", keys)?;
        vm.globals.raw_set("ARGV", args)?;
        Ok((Value::Nil, Value::Nil))
    };
    let (keys, args) = setup(lua)
        .map_err(|e| Reply::error(format!("ERR Error running script {}, {e}", run.name)))?;
    vm.resp3.store(false, Ordering::Relaxed);
    let threshold = ctx.srv.config.read().busy_reply_threshold;
    let saved_db = ctx.client.db;
    vm.busy.begin(run.name, run.is_function, threshold);
    let outcome = lua.scope(|scope| {
        let busy = &vm.busy;
        let resp3 = &vm.resp3;
        let perms = &run.perms;
        let ctx = &mut *ctx;
        // `(true, args)` from redis.acl_check_cmd, `(false, args)` from redis.call: one
        // function, as both need the command's context.
        let call =
            scope.create_function_mut(move |lua, (acl_only, args): (bool, MultiValue)| {
                if acl_only {
                    return script_acl_check(lua, ctx, args);
                }
                script_call(lua, ctx, busy, resp3.load(Ordering::Relaxed), perms, args)
            })?;
        lua.set_named_registry_value(CALL_SLOT, call)?;
        let result = vm
            .runner
            .call::<(bool, Value)>((run.func.clone(), keys, args));
        lua.set_named_registry_value(CALL_SLOT, Value::Nil)?;
        result
    });
    let stop = vm.busy.end();
    // A script that ran into the memory limit leaves its garbage behind; collect it
    // now, or the next script could fail to allocate its KEYS and ARGV.
    let limit = ctx.srv.config.read().lua_memory_limit as usize;
    if limit > 0 && lua.used_memory() > limit / 2 {
        if let Err(e) = lua.gc_collect() {
            tracing::warn!(error = %e, "cannot collect the script state's garbage");
        }
    }
    if ctx.client.db != saved_db {
        ctx.client.select(saved_db); // SELECT inside a script does not leak to the caller
    }
    let _ = vm.globals.raw_set("KEYS", Value::Nil);
    let _ = vm.globals.raw_set("ARGV", Value::Nil);
    if stop.is_some() {
        if let Err(e) = vm.reset_hook() {
            tracing::error!(error = %e, "cannot reset the script hook");
        }
    }
    match stop {
        Some(Stop::Killed) => {
            tracing::warn!("Lua script killed by user with SCRIPT KILL.");
            // On a ring a script's writes are not counted as it makes them (they wait for
            // its consensus round), so it may be stopped after writing: they are dropped.
            ctx.txn = Txn::new(&ctx.srv.store);
            let source = if run.is_function {
                "@user_function"
            } else {
                "@user_script"
            };
            return Err(Reply::error(format!(
                "ERR Script killed by user with SCRIPT KILL... script: {}, on {source}:{}.",
                run.name,
                vm.busy.line()
            )));
        }
        Some(Stop::Shutdown) => {
            ctx.txn = Txn::new(&ctx.srv.store); // its writes are dropped, never half applied
            return Err(Reply::error(
                "ERR Script stopped: the server is shutting down; none of its writes were applied",
            ));
        }
        None => {}
    }
    let resp3 = vm.resp3.load(Ordering::Relaxed);
    match outcome {
        Ok((true, value)) => Ok(lua_to_reply(&value, resp3)),
        Ok((false, err)) => Err(error_reply(&err, run.name)),
        Err(e) => Err(Reply::error(format!(
            "ERR Error running script {}, {}",
            run.name,
            first_line(&e.to_string())
        ))),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The reply for an error a script raised, as Redis builds it from the error table.
fn error_reply(err: &Value, name: &str) -> Reply {
    let Value::Table(t) = err else {
        let msg = match err {
            Value::String(s) => s.to_string_lossy(),
            _ => "execution failure".to_string(),
        };
        let msg: String = msg.chars().take(100).collect();
        return Reply::error(format!("ERR Error running script {name}, {msg}"));
    };
    let field = |t: &Table, k: &str| -> Option<String> {
        match t.raw_get::<Value>(k) {
            Ok(Value::String(s)) => Some(s.to_string_lossy()),
            Ok(Value::Integer(n)) => Some(n.to_string()),
            Ok(Value::Number(n)) => Some((n as i64).to_string()),
            _ => None,
        }
    };
    let msg = field(t, "err").unwrap_or_else(|| "ERR unknown error".into());
    let msg = msg.strip_prefix('-').unwrap_or(&msg).to_string();
    match (field(t, "source"), field(t, "line")) {
        (Some(source), Some(line)) => {
            Reply::error(format!("{msg} script: {name}, on {source}:{line}."))
        }
        _ => Reply::error(msg),
    }
}
